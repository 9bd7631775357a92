"""What the soak sends, how it is sent, and what must exist afterwards: shared by bench/soak.py
and its short CI version (tests/system/test_soak.py).

A plan of `events` requests over `seconds` is `events // replays` distinct events, each sent
`replays` times (the same body again, as a sender retrying would). Four in five distinct events
fire: firing event k goes to integration KINDS[k % 5] (Alertmanager, Grafana, PagerDuty Events
v2, Opsgenie, generic) with a dedup key and a group of its own (`<run>-<k>`). The rest resolve
firing events k = 3, 7, 11, …, each in its own format (Opsgenie's close, PagerDuty's resolve,
status "resolved" in the others), and are sent only once every copy of that firing event has
been answered, so they are stored, and processed, after it. So the end state is exact: one
alert in one incident of its own per firing event, its `occurrences` counting the copies
answered 2xx; the resolved ones' alert resolved and their incident with it (auto-resolve).
Copies are interleaved: copy r of firing event k is due at slot k + r * spread, its resolve's
copies from slot k + (replays + 1) * spread, so a retry lands a second or two after the first
copy, among other events.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

KINDS = ("alertmanager", "grafana", "pagerduty", "opsgenie", "generic")
STARTS_AT = "2026-12-01T09:21:30.123Z"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class Plan:
    events: int  # requests in all, replays included
    seconds: float  # over how long, at an even rate
    replays: int  # copies of each distinct event
    run: str  # names this run's dedup keys and groups
    spread: int = 50  # slots between two copies of one event

    @property
    def distinct(self) -> int:
        return self.events // self.replays

    @property
    def firing(self) -> int:
        return self.distinct - self.distinct // 5

    def resolved(self) -> list[int]:
        """The firing events a resolve event ends (there are distinct // 5 of them)."""
        return [4 * j + 3 for j in range(self.distinct // 5)]

    def kind(self, k: int) -> str:
        return KINDS[k % len(KINDS)]

    def tag(self, k: int) -> str:
        return f"{self.run}-{k}"

    def schedule(self) -> list[tuple[float, str, int, int]]:
        """(due second, action, event, copy) for every request, in the order they are due;
        action is "fire" or "resolve" (event k's resolve)."""
        n, gap = self.replays, self.spread
        slots = [(k + r * gap, "fire", k, r) for k in range(self.firing) for r in range(n)]
        slots += [
            (k + (n + 1 + r) * gap, "resolve", k, r) for k in self.resolved() for r in range(n)
        ]
        slots.sort()
        interval = self.seconds / max(1, len(slots))
        return [(i * interval, action, k, r) for i, (_, action, k, r) in enumerate(slots)]

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "distinct": self.distinct,
            "firing": self.firing,
            "resolves": len(self.resolved()),
        }


# --- the five formats --------------------------------------------------------------------------


def _am_shaped(tag: str, kind: str, status: str) -> dict:
    """An Alertmanager (or, with Grafana's extras, Grafana 9+) notification: one alert, its own
    group."""
    alert = {
        "status": status,
        "labels": {"alertname": "SoakAlert", "instance": f"{tag}:9100", "soak": tag},
        "annotations": {"summary": f"Soak alert {tag}"},
        "startsAt": STARTS_AT,
        "endsAt": GO_ZERO_TIME if status == "firing" else "2026-12-01T09:40:00Z",
        "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=up",
        "fingerprint": tag,
    }
    body = {
        "receiver": "muster",
        "status": status,
        "alerts": [alert],
        "groupLabels": {"soak": tag},
        "commonLabels": {"alertname": "SoakAlert"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com:9093",
        "version": "4",
        "groupKey": '{}:{soak="' + tag + '"}',
        "truncatedAlerts": 0,
    }
    if kind == "grafana":
        alert.update(
            silenceURL="http://grafana.example.com/alerting/silence/new",
            dashboardURL="http://grafana.example.com/d/soak",
            panelURL="http://grafana.example.com/d/soak?viewPanel=1",
            values={"A": 42.5},
            valueString="[ var='A' labels={} value=42.5 ]",
        )
        body.update(orgId=1, state="alerting", title=f"[FIRING:1] SoakAlert {tag}", message="")
    return body


def request_for(
    kind: str, tag: str, token: str, path: str, action: str = "fire"
) -> tuple[str, dict, bytes]:
    """The (path, headers, body) a sender of `kind` posts to fire (or resolve) event `tag`."""
    headers = {"Content-Type": "application/json"}
    status = "firing" if action == "fire" else "resolved"
    if kind in ("alertmanager", "grafana"):
        body: dict = _am_shaped(tag, kind, status)
    elif kind == "pagerduty":
        body = {"routing_key": token, "dedup_key": tag}
        if action == "fire":
            body["event_action"] = "trigger"
            body["payload"] = {"summary": f"Soak {tag}", "source": "soak", "severity": "warning"}
        else:
            body["event_action"] = "resolve"
    elif kind == "opsgenie":
        headers["Authorization"] = f"GenieKey {token}"
        if action == "fire":
            body = {"message": f"Soak alert {tag}", "alias": tag, "tags": ["soak"]}
        else:
            path = f"{path}/{tag}/close?identifierType=alias"
            body = {"source": "soak", "note": "resolved by the soak"}
    else:
        body = {"summary": f"Soak alert {tag}", "dedup_key": tag, "group_key": tag}
        body.update(labels={"soak": tag}, status=status)
    return path, headers, json.dumps(body).encode()


# --- sending -----------------------------------------------------------------------------------


@dataclass
class Sent:
    statuses: Counter  # HTTP status (or "error: <kind>") -> count
    accepted: Counter  # (action, event) -> copies answered 2xx
    latencies_ms: list[float]
    wall_s: float  # from the first request's due time to the last answer
    late_s: float  # how far behind its due time the latest request was sent
    retried: int = 0  # requests sent again after a 5xx or no answer
    retry_causes: Counter = field(default_factory=Counter)  # what those answers were

    def figures(self) -> dict:
        lat = sorted(self.latencies_ms)
        pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None  # noqa: E731
        sent = sum(self.statuses.values())
        return {
            "sent": sent,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items(), key=str)},
            "5xx": sum(v for k, v in self.statuses.items() if isinstance(k, int) and k >= 500),
            "not_2xx": sum(
                v for k, v in self.statuses.items() if not (isinstance(k, int) and k < 300)
            ),
            "wall_s": round(self.wall_s, 1),
            "accept_rate_per_s": round(sent / self.wall_s, 1) if self.wall_s else None,
            "latency_p50_ms": round(statistics.median(lat), 1) if lat else None,
            "latency_p99_ms": pick(0.99),
            "latency_max_ms": round(lat[-1], 1) if lat else None,
            "most_behind_schedule_s": round(self.late_s, 2),
            "retried": self.retried,
            "retry_causes": {str(k): v for k, v in sorted(self.retry_causes.items(), key=str)},
        }


def send(
    plan: Plan,
    port: int | list[int],
    targets: dict[str, dict],
    threads: int = 16,
    *,
    retries: int = 0,
) -> Sent:
    """Send the plan's requests at their due times (open loop) from `threads` keep-alive
    connections; `targets[kind]` has the integration's `token` and `path`.

    With several ports (web processes behind a load balancer), each connection starts on one
    and moves to the next when one fails. With `retries`, a request answered 5xx or not answered
    is sent again, as Alertmanager and the other senders do: after its Retry-After (1 s
    without), on the next port, up to `retries` times; `statuses` counts the last answers,
    `retried` the requests sent again."""
    ports = [port] if isinstance(port, int) else list(port)
    schedule = plan.schedule()
    statuses: Counter = Counter()
    accepted: Counter = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    cursor = iter(schedule)
    late = [0.0]
    answered: Counter = Counter()  # firing event -> copies answered (any status)
    all_answered = threading.Condition(lock)
    began = time.monotonic()

    retried = [0]
    retry_causes: Counter = Counter()  # the answers that made senders send again

    def worker(first: int) -> None:
        turn = [first]

        def connect() -> http.client.HTTPConnection:
            return http.client.HTTPConnection("127.0.0.1", ports[turn[0] % len(ports)], timeout=30)

        conn = connect()
        while True:
            with lock:
                item = next(cursor, None)
            if item is None:
                break
            due, action, k, _ = item
            if action == "resolve":  # only once the firing copies are answered: stored first
                with lock:
                    all_answered.wait_for(lambda k=k: answered[k] == plan.replays, timeout=60)
            kind = plan.kind(k)
            target = targets[kind]
            path, headers, body = request_for(
                kind, plan.tag(k), target["token"], target["path"], action
            )
            wait = began + due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            t0 = time.monotonic()
            for attempt in range(retries + 1):
                retry_after = 1.0
                try:
                    conn.request("POST", path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    status: int | str = response.status
                    retry_after = float(response.getheader("Retry-After") or 1)
                    if response.getheader("Connection", "").lower() == "close":
                        conn.close()
                except (OSError, http.client.HTTPException) as exc:
                    status = f"error: {type(exc).__name__}"
                    conn.close()
                if attempt == retries or (isinstance(status, int) and status < 500):
                    break
                with lock:
                    retried[0] += 1
                    retry_causes[status] += 1
                conn.close()
                turn[0] += 1
                conn = connect()
                time.sleep(min(retry_after, 5.0))
            t1 = time.monotonic()
            with lock:
                statuses[status] += 1
                latencies.append((t1 - t0) * 1000)
                late[0] = max(late[0], t0 - began - due)
                if isinstance(status, int) and 200 <= status < 300:
                    accepted[action, k] += 1
                if action == "fire":
                    answered[k] += 1
                    all_answered.notify_all()
        conn.close()

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return Sent(
        statuses, accepted, latencies, time.monotonic() - began, late[0], retried[0], retry_causes
    )


# --- what must exist afterwards ----------------------------------------------------------------


def expected(plan: Plan, sent: Sent) -> dict:
    """Every firing event with a copy accepted is one alert in one incident of its own, its
    occurrences the copies accepted (a copy refused was not taken: a sender would retry it);
    resolved, alert and incident, when a copy of its resolve was accepted too."""
    fired = {k for action, k in sent.accepted if action == "fire"}
    resolved = {k for action, k in sent.accepted if action == "resolve"} & fired
    by_kind = Counter(plan.kind(k) for k in fired)
    return {
        "incidents": len(fired),
        "alerts": len(fired),
        "occurrences": sum(n for (action, _), n in sent.accepted.items() if action == "fire"),
        "incidents_by_kind": {kind: by_kind.get(kind, 0) for kind in KINDS},
        "resolved": len(resolved),
    }


def unsettled(conn, integration_ids: list[int]) -> int:
    """Ingest requests stored but not processed yet."""
    (n,) = conn.execute(
        "SELECT count(*) FROM alerts_ingestrequest WHERE integration_id = ANY(%s)"
        " AND outcome = 'accepted' AND processed_at IS NULL",
        [integration_ids],
    ).fetchone()
    return n


def found(conn, plan: Plan, targets: dict[str, dict]) -> dict:
    """What the database holds for this run, counted from `conn` (a psycopg connection)."""
    integrations = [t["integration_id"] for t in targets.values()]
    services = [t["service_id"] for t in targets.values()]
    like = plan.run + "-%"
    alerts, occurrences, loose, resolved = conn.execute(
        "SELECT count(*), coalesce(sum(occurrences), 0), count(*) FILTER (WHERE incident_id IS"
        " NULL), count(*) FILTER (WHERE status = 'resolved') FROM alerts_alert"
        " WHERE integration_id = ANY(%s) AND fingerprint LIKE %s",
        [integrations, like],
    ).fetchone()
    (dup_alerts,) = conn.execute(
        "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM alerts_alert"
        " WHERE integration_id = ANY(%s) AND fingerprint LIKE %s"
        " GROUP BY integration_id, fingerprint) c",
        [integrations, like],
    ).fetchone()
    per_service = dict(
        conn.execute(
            "SELECT service_id, count(*) FROM incidents_incident WHERE service_id = ANY(%s)"
            " GROUP BY service_id",
            [services],
        ).fetchall()
    )
    (incidents_resolved,) = conn.execute(
        "SELECT count(*) FROM incidents_incident WHERE service_id = ANY(%s)"
        " AND status = 'resolved'",
        [services],
    ).fetchone()
    (dup_incidents,) = conn.execute(
        "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM incidents_incident"
        " WHERE service_id = ANY(%s) GROUP BY service_id, group_key) c",
        [services],
    ).fetchone()
    (crowded,) = conn.execute(
        "SELECT count(*) FROM (SELECT incident_id FROM alerts_alert WHERE integration_id = ANY(%s)"
        " AND incident_id IS NOT NULL GROUP BY incident_id HAVING count(*) > 1) c",
        [integrations],
    ).fetchone()
    (stored,) = conn.execute(
        "SELECT count(*) FROM alerts_ingestrequest WHERE integration_id = ANY(%s)"
        " AND outcome = 'accepted'",
        [integrations],
    ).fetchone()
    return {
        "incidents": sum(per_service.values()),
        "alerts": alerts,
        "occurrences": int(occurrences),
        "incidents_by_kind": {k: per_service.get(t["service_id"], 0) for k, t in targets.items()},
        "duplicate_incidents": int(dup_incidents),  # one group with more than one incident
        "duplicate_alerts": int(dup_alerts),  # one dedup key with more than one alert
        "incidents_with_two_events": crowded,  # two distinct events in one incident
        "alerts_without_incident": loose,
        "alerts_resolved": resolved,
        "incidents_resolved": incidents_resolved,
        "requests_stored": stored,
        "requests_unprocessed": unsettled(conn, integrations),
    }


def problems(
    plan: Plan, sent: dict, want: dict, got: dict, *, senders_retry: bool = False
) -> list[str]:
    """Everything that is not exactly as it must be; empty when the run is sound.

    With `senders_retry` (bench/chaos.py), a request sent again after no answer may have been
    stored the first time too: more requests stored and occurrences counted than accepted is
    sound, fewer stored is a loss."""
    out = []
    planned = (plan.firing + len(plan.resolved())) * plan.replays
    if sent["sent"] != planned:
        out.append(f"{sent['sent']} requests answered of {planned} planned")
    if sent["5xx"]:
        out.append(f"{sent['5xx']} answers were 5xx: {sent['statuses']}")
    if sent["not_2xx"]:
        out.append(f"{sent['not_2xx']} requests were not answered 2xx: {sent['statuses']}")
    exact = ("incidents", "alerts", "incidents_by_kind")
    for name in exact if senders_retry else (*exact, "occurrences"):
        if want[name] != got[name]:
            out.append(f"{name}: expected {want[name]}, found {got[name]}")
    if senders_retry and got["occurrences"] < want["occurrences"]:
        out.append(f"occurrences: at least {want['occurrences']}, found {got['occurrences']}")
    accepted = sent["sent"] - sent["not_2xx"]
    stored = got["requests_stored"]
    if stored < accepted or (stored != accepted and not senders_retry):
        out.append(f"requests stored {stored}, accepted {accepted}")
    for name in ("alerts_resolved", "incidents_resolved"):
        if got[name] != want["resolved"]:
            out.append(f"{name}: expected {want['resolved']}, found {got[name]}")
    for name in (
        "duplicate_incidents",
        "duplicate_alerts",
        "incidents_with_two_events",
        "alerts_without_incident",
        "requests_unprocessed",
    ):
        if got[name]:
            out.append(f"{name}: {got[name]}")
    return out
