"""The embedded default pages someone, end to end, on its own (how fast is printed, not asserted:
a wall-clock number makes a flaky test, not a benchmark; bench/paging.py measures it).

`./musterctl up` with no Twilio settings: the first start makes the demo admin reachable at a
console "SMS" number, with a demo escalation policy on the demo service. An alert posted over
HTTP to the printed ingest URL opens an incident; on commit the receiver enqueues
follow_entry, the in-process worker pages level 1 and enqueues the delivery, and the console
channel "sends" it: logged on `muster.outbox` (printed on stdout) and listed at
`/api/v1/outbox/`. Each hop crosses Celery's in-memory broker, really, in one process.
"""

from __future__ import annotations

import re
import time

import httpx

from tests.helpers.system import GENERIC_LINE, PASSWORD_LINE, log_in, processed_results

POLL_EVERY = 0.05
GIVE_UP_AFTER = 15.0  # stop polling here, so a slow page is measured rather than waited on
PRINT_TIMEOUT = 5.0
ALERTS = (
    "Disk full on db-1",
    "Checkout latency over 2s",
    "Payment webhook failing",
)


def sent_page(client: httpx.Client, number: int) -> dict | None:
    """Return the console page to the demo admin for incident `number`, once it is sent."""
    response = client.get("/api/v1/outbox/", params={"incident": number})
    assert response.status_code == 200, response.text
    for message in response.json()["results"]:
        if message["person"] == "admin" and message["status"] == "sent":
            page = client.get(f"/api/v1/pages/{message['page']}/")
            assert page.status_code == 200, page.text
            return page.json()
    return None


def test_an_alert_pages_the_demo_admin_through_the_console(start_muster, tmp_path):
    muster = start_muster(tmp_path / "data")
    username, password = muster.printed(PASSWORD_LINE).groups()
    assert username == "admin"
    generic_url = muster.printed(GENERIC_LINE).group(1)
    timings: list[float] = []

    with httpx.Client(base_url=muster.base_url, timeout=10) as client:
        log_in(client, username, password)
        for i, summary in enumerate(ALERTS):
            response = httpx.post(
                generic_url,
                json={"summary": summary, "severity": "critical", "dedup_key": f"paging-{i}"},
                timeout=10,
            )
            accepted = time.monotonic()
            assert 200 <= response.status_code < 300, response.text
            [result] = processed_results(client, generic_url, response)
            assert result["action"] == "opened", result
            number = result["incident"]

            page = sent_page(client, number)
            while page is None and time.monotonic() - accepted < GIVE_UP_AFTER:
                time.sleep(POLL_EVERY)
                page = sent_page(client, number)
            took = time.monotonic() - accepted
            timings.append(took)
            assert page is not None, (
                f"no sent page for #{number} after {GIVE_UP_AFTER:.0f}s: "
                f"{client.get('/api/v1/outbox/').json()}\n{muster.diagnostics()}"
            )
            assert page["channel"] == "console" and page["address"] == "+15555550100", page
            assert page["step"] == 0 and not page["manual"] and page["provider_id"], page
            assert f"#{number}" in page["body"] and summary in page["body"], page["body"]

            # And the server printed it, as the console outbox promises, on its stdout.
            line = muster.wait_printed(
                re.compile(rf"muster\.outbox: page {page['id']} to admin \(sms \+15555550100\)"),
                PRINT_TIMEOUT,
            ).string
            assert f"#{number}" in line and summary in line, line

    print(f"paged after the alert's 2xx: {', '.join(f'{t * 1000:.0f} ms' for t in timings)}")
    assert muster.stop() == 0, muster.diagnostics()
