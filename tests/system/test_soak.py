"""The soak's short version: bench/soak.py --quick, asserting counts and never time.

The same code as the bench (bench/soak.py, bench/soak_plan.py): throwaway PostgreSQL and Redis,
the production shape on loopback (granian, a Celery worker and beat), 300 events over 15 s in
the five ingest formats (Alertmanager, Grafana, PagerDuty Events v2, Opsgenie, generic): 80
firing events and 20 resolving ones, each sent 3× interleaved. Every answer is 2xx, none 5xx;
exactly one incident and one alert exist per firing event, its occurrences counting its 3
copies; 20 alerts and their incidents are resolved; no group has two incidents, no dedup key
two alerts. How fast any of it was is for the bench's figures.
"""

from __future__ import annotations

import sys

from tests.helpers.system import ROOT

sys.path[:0] = [p for p in (str(ROOT / "bench"),) if p not in sys.path]

import soak  # noqa: E402  (bench/soak.py)


def test_a_short_soak_ends_with_exactly_one_incident_per_distinct_event(tmp_path):
    report = soak.run(soak.parse_args(["--quick", "--fast-db"]))
    sent, want, got = report["sent"], report["expected"], report["found"]
    plan = report["plan"]
    assert (plan["firing"], plan["resolves"], plan["replays"]) == (80, 20, 3)
    assert sent["sent"] == 300
    assert sent["5xx"] == 0, sent["statuses"]
    assert sent["not_2xx"] == 0, sent["statuses"]
    assert want["incidents"] == want["alerts"] == 80 and want["resolved"] == 20
    assert got["incidents"] == 80
    assert got["incidents_by_kind"] == {kind: 16 for kind in soak.soak_plan.KINDS}
    assert got["alerts"] == 80
    assert got["occurrences"] == 240
    assert got["alerts_resolved"] == got["incidents_resolved"] == 20
    assert got["requests_stored"] == 300 and got["requests_unprocessed"] == 0
    assert got["duplicate_incidents"] == 0
    assert got["duplicate_alerts"] == 0
    assert got["incidents_with_two_events"] == 0
    assert got["alerts_without_incident"] == 0
    assert report["problems"] == []
    assert report["log_errors"] == []
