"""What the soak sends, how it is sent, and what must exist afterwards: shared by bench/soak.py
and its short CI version (tests/system/test_soak.py).

A plan of `events` requests over `seconds` is `events // replays` distinct events, each sent
`replays` times (the same body again, as a sender retrying would). Distinct event k goes to
integration KINDS[k % 5] (Alertmanager, Grafana, PagerDuty Events v2, Opsgenie, generic), and
carries a dedup key and a group of its own (`<run>-<k>`): so each distinct event must end as
exactly one alert, in exactly one incident of its own, its `occurrences` counting every copy
that was answered 2xx. Copies are interleaved: copy r of event k is due at slot
k + r * spread (sorted), so a retry lands a second or two after the first copy, among others.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass

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

    def kind(self, k: int) -> str:
        return KINDS[k % len(KINDS)]

    def tag(self, k: int) -> str:
        return f"{self.run}-{k}"

    def schedule(self) -> list[tuple[float, int, int]]:
        """(due second, event, copy) for every request, in the order they are due."""
        slots = sorted(
            (k + r * self.spread, r, k) for k in range(self.distinct) for r in range(self.replays)
        )
        interval = self.seconds / max(1, len(slots))
        return [(i * interval, k, r) for i, (_, r, k) in enumerate(slots)]

    def as_dict(self) -> dict:
        return {**asdict(self), "distinct": self.distinct}


# --- the five formats --------------------------------------------------------------------------


def _am_shaped(tag: str, kind: str) -> dict:
    """An Alertmanager (or, with Grafana's extras, Grafana 9+) notification: one alert, its own
    group."""
    alert = {
        "status": "firing",
        "labels": {"alertname": "SoakAlert", "instance": f"{tag}:9100", "soak": tag},
        "annotations": {"summary": f"Soak alert {tag}"},
        "startsAt": STARTS_AT,
        "endsAt": GO_ZERO_TIME,
        "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=up",
        "fingerprint": tag,
    }
    body = {
        "receiver": "muster",
        "status": "firing",
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


def request_for(kind: str, tag: str, token: str, path: str) -> tuple[str, dict, bytes]:
    """The (path, headers, body) a sender of `kind` posts for the distinct event `tag`."""
    headers = {"Content-Type": "application/json"}
    if kind in ("alertmanager", "grafana"):
        body: dict = _am_shaped(tag, kind)
    elif kind == "pagerduty":
        body = {
            "routing_key": token,
            "event_action": "trigger",
            "dedup_key": tag,
            "payload": {"summary": f"Soak event {tag}", "source": "soak", "severity": "warning"},
        }
    elif kind == "opsgenie":
        headers["Authorization"] = f"GenieKey {token}"
        body = {"message": f"Soak alert {tag}", "alias": tag, "tags": ["soak"], "priority": "P3"}
    else:
        body = {"summary": f"Soak alert {tag}", "dedup_key": tag, "group_key": tag}
        body["labels"] = {"soak": tag}
    return path, headers, json.dumps(body).encode()


# --- sending -----------------------------------------------------------------------------------


@dataclass
class Sent:
    statuses: Counter  # HTTP status (or "error: <kind>") -> count
    accepted: Counter  # distinct event -> copies answered 2xx
    latencies_ms: list[float]
    wall_s: float  # from the first request's due time to the last answer
    late_s: float  # how far behind its due time the latest request was sent

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
        }


def send(plan: Plan, port: int, targets: dict[str, dict], threads: int = 16) -> Sent:
    """Send the plan's requests at their due times (open loop) from `threads` keep-alive
    connections; `targets[kind]` has the integration's `token` and `path`."""
    schedule = plan.schedule()
    statuses: Counter = Counter()
    accepted: Counter = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    cursor = iter(schedule)
    late = [0.0]
    began = time.monotonic()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                item = next(cursor, None)
            if item is None:
                break
            due, k, _ = item
            kind = plan.kind(k)
            target = targets[kind]
            path, headers, body = request_for(kind, plan.tag(k), target["token"], target["path"])
            wait = began + due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            t0 = time.monotonic()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status: int | str = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                status = f"error: {type(exc).__name__}"
                conn.close()
            t1 = time.monotonic()
            with lock:
                statuses[status] += 1
                latencies.append((t1 - t0) * 1000)
                late[0] = max(late[0], t0 - began - due)
                if isinstance(status, int) and 200 <= status < 300:
                    accepted[k] += 1
        conn.close()

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return Sent(statuses, accepted, latencies, time.monotonic() - began, late[0])


# --- what must exist afterwards ----------------------------------------------------------------


def expected(plan: Plan, sent: Sent) -> dict:
    """Every distinct event with a copy accepted is one alert in one incident of its own, its
    occurrences the copies accepted (a copy refused was not taken: a sender would retry it)."""
    by_kind = Counter(plan.kind(k) for k in sent.accepted)
    return {
        "incidents": len(sent.accepted),
        "alerts": len(sent.accepted),
        "occurrences": sum(sent.accepted.values()),
        "incidents_by_kind": {kind: by_kind.get(kind, 0) for kind in KINDS},
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
    alerts, occurrences, loose, firing = conn.execute(
        "SELECT count(*), coalesce(sum(occurrences), 0), count(*) FILTER (WHERE incident_id IS"
        " NULL), count(*) FILTER (WHERE status = 'firing') FROM alerts_alert"
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
        "alerts_firing": firing,
        "requests_stored": stored,
        "requests_unprocessed": unsettled(conn, integrations),
    }


def problems(plan: Plan, sent: dict, want: dict, got: dict) -> list[str]:
    """Everything that is not exactly as it must be; empty when the run is sound."""
    out = []
    if sent["sent"] != plan.distinct * plan.replays:
        out.append(f"{sent['sent']} requests answered of {plan.distinct * plan.replays} planned")
    if sent["5xx"]:
        out.append(f"{sent['5xx']} answers were 5xx: {sent['statuses']}")
    if sent["not_2xx"]:
        out.append(f"{sent['not_2xx']} requests were not answered 2xx: {sent['statuses']}")
    for name in ("incidents", "alerts", "occurrences", "incidents_by_kind"):
        if want[name] != got[name]:
            out.append(f"{name}: expected {want[name]}, found {got[name]}")
    if got["requests_stored"] != sent["sent"] - sent["not_2xx"]:
        out.append(f"requests stored {got['requests_stored']}, accepted {sent['sent']}")
    if got["alerts_firing"] != got["alerts"]:
        out.append(f"alerts not firing: {got['alerts'] - got['alerts_firing']}")
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
