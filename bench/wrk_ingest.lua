-- wrk script for bench/ingest.py: the same request bodies as bench/payloads.py, one connection
-- per thread (run wrk with -t N -c N), so each thread's requests are strictly sequential and
-- the response that arrives answers the request sent last. Each thread records which of its
-- requests were refused and which got no answer; done() prints one JSON line for ingest.py.
--
-- wrk -t8 -c8 -d10s -s bench/wrk_ingest.lua http://127.0.0.1:PORT -- \
--     PATH FORMAT BATCH new|dup PREFIX POOL GROUPS POOL_PER_GROUP

local threads = {}
local next_slot = 0

function setup(thread)
  thread:set("slot", next_slot)
  next_slot = next_slot + 1
  table.insert(threads, thread)
end

local STARTS_AT = "2024-05-14T09:21:30.123Z"
local GO_ZERO_TIME = "0001-01-01T00:00:00Z"

function init(args)
  path = args[1]
  fmt = args[2]
  batch = tonumber(args[3])
  dup = args[4] == "dup"
  prefix = args[5]
  pool = args[6]
  groups = tonumber(args[7])
  pool_per_group = tonumber(args[8])
  headers = { ["Content-Type"] = "application/json" }
  sent = 0          -- requests generated so far; the next one is request `sent`
  pending = -1      -- the request on the wire, or -1
  accepted = 0      -- requests answered 2xx
  refused = ""      -- "i:status,..." for answers other than 2xx
  unanswered = ""   -- "i,..." for requests whose connection failed before an answer
end

local function new_fp(i, k)
  return prefix .. "." .. slot .. ".n" .. i .. "." .. k
end

local function pool_fp(g, k)
  return pool .. "." .. slot .. ".p" .. g .. "." .. k
end

local function am_alert(fp, group)
  return '{"status":"firing","labels":{"alertname":"BenchAlert","instance":"' .. fp
    .. ':9100","job":"bench","env":"bench","severity":"warning","bench_group":"' .. group
    .. '"},"annotations":{"summary":"Bench alert ' .. fp
    .. '","description":"Synthetic alert from bench/ingest.py","runbook_url":'
    .. '"https://runbooks.example.com/bench/BenchAlert"},"startsAt":"' .. STARTS_AT
    .. '","endsAt":"' .. GO_ZERO_TIME
    .. '","generatorURL":"http://prometheus.example.com:9090/graph?g0.expr=up",'
    .. '"fingerprint":"' .. fp .. '"}'
end

local function generic_alert(fp, group)
  return '{"summary":"Bench alert ' .. fp .. '","dedup_key":"' .. fp
    .. '","severity":"warning","group_key":"' .. group
    .. '","labels":{"alertname":"BenchAlert","instance":"' .. fp
    .. ':9100","job":"bench","env":"bench"},"links":'
    .. '[{"url":"https://runbooks.example.com/bench/BenchAlert","kind":"runbook"}]}'
end

-- Returns the fingerprints of request i and their group, as bench/payloads.py alerts_of().
local function alerts_of(i)
  local fps = {}
  local g
  if batch == 1 then
    if not dup then
      g = i % groups
      fps[1] = new_fp(i, 0)
    elseif i % 10 == 0 then
      g = math.floor(i / 10) % groups
      fps[1] = new_fp(i, 0)
    else
      local j = i - math.floor(i / 10) - 1
      g = j % groups
      fps[1] = pool_fp(g, math.floor(j / groups) % pool_per_group)
    end
    return fps, g
  end
  g = i % groups
  local fresh = batch
  if dup then
    for k = 0, pool_per_group - 1 do
      fps[#fps + 1] = pool_fp(g, k)
    end
    fresh = batch - pool_per_group
  end
  for k = 0, fresh - 1 do
    fps[#fps + 1] = new_fp(i, k)
  end
  return fps, g
end

local function body_of(i)
  local fps, g = alerts_of(i)
  local group = pool .. "." .. slot .. ".g" .. g
  local items = {}
  if fmt == "generic" then
    for n, fp in ipairs(fps) do
      items[n] = generic_alert(fp, group)
    end
    if #items == 1 then
      return items[1]
    end
    return '{"alerts":[' .. table.concat(items, ",") .. "]}"
  end
  for n, fp in ipairs(fps) do
    items[n] = am_alert(fp, group)
  end
  return '{"receiver":"muster","status":"firing","alerts":[' .. table.concat(items, ",")
    .. '],"groupLabels":{"bench_group":"' .. group
    .. '"},"commonLabels":{"alertname":"BenchAlert","job":"bench","env":"bench"},'
    .. '"commonAnnotations":{},"externalURL":"http://alertmanager.example.com:9093",'
    .. '"version":"4","groupKey":"{}/{env=\\"bench\\"}:{bench_group=\\"' .. group
    .. '\\"}","truncatedAlerts":0}'
end

function request()
  if pending >= 0 then
    -- wrk is sending again without having seen an answer: the connection failed.
    unanswered = unanswered .. pending .. ","
  end
  pending = sent
  sent = sent + 1
  return wrk.format("POST", path, headers, body_of(pending))
end

function response(status, hdrs, body)
  if pending < 0 then
    return
  end
  if status >= 200 and status < 300 then
    accepted = accepted + 1
  else
    refused = refused .. pending .. ":" .. status .. ","
  end
  pending = -1
end

function done(summary, latency, requests)
  local parts = {}
  for _, t in ipairs(threads) do
    parts[#parts + 1] = string.format(
      '{"slot":%d,"sent":%d,"accepted":%d,"in_flight":%d,"refused":"%s","unanswered":"%s"}',
      t:get("slot"), t:get("sent"), t:get("accepted"), t:get("pending"),
      t:get("refused"), t:get("unanswered"))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"duration_us":%d,"requests":%d,"errors":{"connect":%d,"read":%d,"write":%d,'
      .. '"status":%d,"timeout":%d},"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,'
      .. '"mean":%.1f},"threads":[%s]}\n',
    summary.duration, summary.requests, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, table.concat(parts, ",")))
end
