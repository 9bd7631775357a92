"""A hostile regex can stall nobody's paging: the embedded server, where one stalled thread
once held up everything (HTTP included), keeps answering and keeps opening incidents.

Order and structure, not time: a silence with a catastrophic pattern (exponential on a
backtracking engine) meets a 40-character label, and then the next alert, on another service,
is processed and its incident exists, while /healthz answers throughout.
"""

from __future__ import annotations

import httpx

from tests.helpers.system import GENERIC_LINE, PASSWORD_LINE, log_in, processed_results

CATASTROPHIC = "(.+.+)+!"  # 2^n steps on Python's re for a string of n characters without "!"


def test_a_catastrophic_silence_regex_stalls_neither_ingest_nor_the_server(start_muster, tmp_path):
    muster = start_muster(tmp_path / "data")
    username, password = muster.printed(PASSWORD_LINE).groups()
    demo_url = muster.printed(GENERIC_LINE).group(1)

    with httpx.Client(base_url=muster.base_url, timeout=10) as client:
        log_in(client, username, password)
        client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
        silence = client.post(
            "/api/v1/silences/",
            json={
                "matchers": [{"label": "alertname", "op": "=~", "value": CATASTROPHIC}],
                "ends_at": "2099-01-01T00:00:00Z",
                "comment": "hostile",
            },
        )
        assert silence.status_code == 201, silence.text
        service = client.post("/api/v1/services/", json={"name": "payments"})
        assert service.status_code == 201, service.text
        other = client.post(
            "/api/v1/integrations/",
            json={"name": "payments", "kind": "generic", "service": service.json()["id"]},
        )
        assert other.status_code == 201, other.text
        other_url = other.json()["ingest_url"]

        long_name = "a" * 40  # never ends in "!": the worst case for the pattern
        first = httpx.post(
            demo_url,
            json={"summary": "hostile label", "labels": {"alertname": long_name}},
            timeout=10,
        )
        assert first.status_code == 200, first.text
        assert client.get("/healthz").status_code == 200
        second = httpx.post(
            other_url,
            json={"summary": "Payments failing", "severity": "critical"},
            timeout=10,
        )
        assert second.status_code == 200, second.text

        # Both are processed: the first opens its incident (the silence does not match it),
        # and the next alert's incident exists.
        [hostile] = processed_results(client, demo_url, first)
        assert hostile["action"] == "opened", hostile
        [result] = processed_results(client, other_url, second)
        assert result["action"] == "opened", result
        incident = client.get(f"/api/v1/incidents/{result['incident']}/")
        assert incident.status_code == 200 and incident.json()["service"]["name"] == "payments"
        assert client.get("/healthz").status_code == 200
