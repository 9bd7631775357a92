"""The chaos run's short version: bench/chaos.py --quick, asserting counts and never time.

The production shape on loopback (2 web processes, 2 Celery workers, 2 beats under the tick's
lease, PostgreSQL, Redis, the Twilio fake) takes a storm of 420 events in the five ingest formats
while, one after another, a web process, a worker and the tick holder are SIGKILLed, Redis is
flushed and then restarted, and PostgreSQL is restarted. Senders retry what was not answered
2xx, as real ones do. Nothing accepted is lost, every event is exactly one incident, every open
incident is paged exactly once, each disruption's probe alert is paged once, and another beat
takes the tick over. How fast it recovered is for the bench's figures.
"""

from __future__ import annotations

import sys

from tests.helpers.system import ROOT

sys.path[:0] = [p for p in (str(ROOT / "bench"),) if p not in sys.path]

import chaos  # noqa: E402  (bench/chaos.py)


def test_a_storm_survives_every_part_failing_in_turn_with_nothing_lost_or_paged_twice():
    report = chaos.run(chaos.parse_args(["--quick", "--fast-db"]))
    sent, want, got, pages = (report[k] for k in ("sent", "expected", "found", "pages"))

    assert [d["disruption"] for d in report["disruptions"]] == list(chaos.DISRUPTIONS)
    # Every request was answered 2xx in the end, and every one answered 2xx is stored.
    assert sent["sent"] == 420 and sent["not_2xx"] == 0, sent["statuses"]
    assert got["requests_stored"] >= sent["sent"]
    # While PostgreSQL restarted, ingest said 503 (with Retry-After) and senders came back;
    # no 5xx but 503 at any time.
    causes = sent["retry_causes"]
    assert causes.get("503", 0) > 0, causes
    assert not [c for c in causes if c.isdigit() and c != "503"], causes
    # Exactly one incident and one alert per firing event; resolves applied.
    assert got["incidents"] == want["incidents"] == got["alerts"] == 112
    assert got["alerts_resolved"] == got["incidents_resolved"] == want["resolved"] == 28
    assert got["duplicate_incidents"] == got["duplicate_alerts"] == 0
    assert got["requests_unprocessed"] == 0
    # Every open incident paged exactly once; none twice. A page whose worker was killed
    # between handing it over and the provider's answer is `unknown`, never sent again: at most
    # one per thread of the worker killed.
    assert pages["open"] == 84 and pages["missing"] == [] and pages["duplicate"] == []
    assert len(pages["outcome_unknown"]) <= 4, pages["why_missing"]
    assert pages["probes_paged_once"] == len(chaos.DISRUPTIONS)
    kill_tick = next(d for d in report["disruptions"] if d["disruption"] == "kill-tick")
    assert kill_tick["tick_taken_over"] is True
    assert report["problems"] == []
