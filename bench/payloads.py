"""What the ingest benchmark sends: deterministic request bodies, the same as wrk_ingest.lua's.

Every request is named by its slot (one per connection, or per wrk thread) and its index within
the slot, and the alerts it carries follow from those two numbers alone. So the benchmark can
say, for every request that was answered 2xx, exactly which fingerprints must be in the
database and how often each must have been counted, without the client keeping a list.

Shapes (G = `groups`, P = `pool_per_group`; `new` = fingerprints never sent before):

- single/new:   request i carries one new alert, in group i % G.
- single/dup:   request i is new when i % 10 == 0 (10%); otherwise (90%) it repeats pool alert
                (g, k) with j = i - i // 10 - 1, g = j % G, k = (j // G) % P.
- batch/new:    request i carries `batch` new alerts, all in group i % G.
- batch/dup:    request i, group g = i % G, carries the P pool alerts of g (P = 90% of the
                batch) and batch - P new ones: an Alertmanager group re-sent with a few new.

Groups are per slot, so two connections never contend for one incident's row lock, the way
Alertmanager's groups are disjoint. The pool is seeded (sent once) before a dup scenario.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass

STARTS_AT = "2024-05-14T09:21:30.123Z"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class Shape:
    """One scenario's request shape, shared with the wrk script through its arguments."""

    fmt: str  # "alertmanager" or "generic"
    batch: int  # alerts per request
    dup: bool  # 90% of alerts repeat pool alerts
    prefix: str  # names this run's new fingerprints
    pool: str  # names the pool's fingerprints and the groups (dup scenarios), else = prefix
    groups: int = 4
    pool_per_group: int = 25

    def as_dict(self) -> dict:
        return asdict(self)

    def wrk_args(self) -> list[str]:
        return [
            self.fmt,
            str(self.batch),
            "dup" if self.dup else "new",
            self.prefix,
            self.pool,
            str(self.groups),
            str(self.pool_per_group),
        ]


def new_fp(prefix: str, slot: int, i: int, k: int) -> str:
    return f"{prefix}.{slot}.n{i}.{k}"


def pool_fp(pool: str, slot: int, g: int, k: int) -> str:
    return f"{pool}.{slot}.p{g}.{k}"


def group_name(pool: str, slot: int, g: int) -> str:
    return f"{pool}.{slot}.g{g}"


def alerts_of(shape: Shape, slot: int, i: int) -> list[tuple[str, int]]:
    """Return (fingerprint, group) for each alert that request `i` of `slot` carries."""
    g_count = shape.groups
    if shape.batch == 1:
        if not shape.dup:
            return [(new_fp(shape.prefix, slot, i, 0), i % g_count)]
        if i % 10 == 0:
            return [(new_fp(shape.prefix, slot, i, 0), (i // 10) % g_count)]
        j = i - i // 10 - 1
        g = j % g_count
        k = (j // g_count) % shape.pool_per_group
        return [(pool_fp(shape.pool, slot, g, k), g)]
    g = i % g_count
    if not shape.dup:
        return [(new_fp(shape.prefix, slot, i, k), g) for k in range(shape.batch)]
    pool = [(pool_fp(shape.pool, slot, g, k), g) for k in range(shape.pool_per_group)]
    fresh = shape.batch - shape.pool_per_group
    return pool + [(new_fp(shape.prefix, slot, i, k), g) for k in range(fresh)]


def pool_alerts(shape: Shape, slot: int, g: int) -> list[tuple[str, int]]:
    return [(pool_fp(shape.pool, slot, g, k), g) for k in range(shape.pool_per_group)]


def _am_alert(fp: str, group: str) -> str:
    return (
        '{"status":"firing","labels":{"alertname":"BenchAlert","instance":"'
        + fp
        + ':9100","job":"bench","env":"bench","severity":"warning","bench_group":"'
        + group
        + '"},"annotations":{"summary":"Bench alert '
        + fp
        + '","description":"Synthetic alert from bench/ingest.py","runbook_url":'
        '"https://runbooks.example.com/bench/BenchAlert"},"startsAt":"'
        + STARTS_AT
        + '","endsAt":"'
        + GO_ZERO_TIME
        + '","generatorURL":"http://prometheus.example.com:9090/graph?g0.expr=up",'
        '"fingerprint":"' + fp + '"}'
    )


def _generic_alert(fp: str, group: str) -> str:
    return (
        '{"summary":"Bench alert '
        + fp
        + '","dedup_key":"'
        + fp
        + '","severity":"warning","group_key":"'
        + group
        + '","labels":{"alertname":"BenchAlert","instance":"'
        + fp
        + ':9100","job":"bench","env":"bench"},"links":'
        '[{"url":"https://runbooks.example.com/bench/BenchAlert","kind":"runbook"}]}'
    )


def body(shape: Shape, slot: int, alerts: list[tuple[str, int]]) -> bytes:
    """Return the request body carrying `alerts` (all of one group) in the shape's format."""
    group = group_name(shape.pool, slot, alerts[0][1])
    if shape.fmt == "generic":
        items = ",".join(_generic_alert(fp, group) for fp, _ in alerts)
        return (items if len(alerts) == 1 else '{"alerts":[' + items + "]}").encode()
    group_key = '{}/{env="bench"}:{bench_group="' + group + '"}'
    return (
        '{"receiver":"muster","status":"firing","alerts":['
        + ",".join(_am_alert(fp, group) for fp, _ in alerts)
        + '],"groupLabels":{"bench_group":"'
        + group
        + '"},"commonLabels":{"alertname":"BenchAlert","job":"bench","env":"bench"},'
        '"commonAnnotations":{},"externalURL":"http://alertmanager.example.com:9093",'
        '"version":"4","groupKey":' + json.dumps(group_key) + ',"truncatedAlerts":0}'
    ).encode()


def request_body(shape: Shape, slot: int, i: int) -> bytes:
    return body(shape, slot, alerts_of(shape, slot, i))


def expected_counts(shape: Shape, slots: dict[int, list[int]]) -> Counter[str]:
    """Return how many times each fingerprint was sent by the requests listed per slot."""
    counts: Counter[str] = Counter()
    for slot, indices in slots.items():
        for i in indices:
            for fp, _ in alerts_of(shape, slot, i):
                counts[fp] += 1
    return counts
