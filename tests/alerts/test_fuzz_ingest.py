"""The real ingest views, fed hostile bodies by Hypothesis (issue 13) through Django's test
client: any bytes or JSON, at every ingest URL, gets a 2xx or a 4xx in that sender's error shape,
never a 5xx; and processing what was accepted (what the worker does next) never fails.

The bodies are those of test_fuzz_parsers.py; here they also go through admission, storage,
the processor and the database (PostgreSQL text cannot hold NUL, jsonb has its limits).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from alerts.models import Kind
from alerts.processor import process_pending
from tests.helpers.fuzz import fuzz_settings
from tests.helpers.fuzz_payloads import bodies, payloads

CONTENT_TYPES = st.sampled_from(["application/json", "text/plain", "application/x+json"])


def check_answer(response: Any, shape: str) -> None:
    assert response.status_code < 500, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    if response.status_code < 400:
        return
    if shape == "muster":
        error = body["error"]
        assert error["status"] == response.status_code
        assert error["message"] and all(isinstance(p, str) for p in error["problems"])
    elif shape == "pagerduty":
        assert body["errors"] and all(isinstance(p, str) for p in body["errors"])
    else:
        assert isinstance(body["message"], str) and body["message"]


def pagerduty_bodies(routing_key: str) -> st.SearchStrategy[bytes]:
    """PagerDuty events, most of them carrying the integration's routing key."""

    def keyed(value: Any) -> bytes:
        if isinstance(value, dict):
            value = {**value, "routing_key": routing_key}
        return json.dumps(value).encode()

    return st.one_of(bodies("pagerduty"), payloads("pagerduty").map(keyed))


# One Django test (one transaction) shares its integrations across the examples, on purpose.
SHARED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@given(kind=st.sampled_from([Kind.ALERTMANAGER, Kind.GRAFANA, Kind.GENERIC]), data=st.data())
@fuzz_settings(ci_examples=60, suppress_health_check=SHARED)
def test_integration_urls_answer_any_body_in_the_error_shape(
    client, make_integration, kind: str, data: st.DataObject
) -> None:
    token = make_integration(kind).token
    if not data.draw(st.integers(min_value=0, max_value=7)):
        token = quote(data.draw(st.text(min_size=1, max_size=70)), safe="")  # unknown, or odd
    response = client.post(
        f"/integrations/{kind}/{token}/",
        data.draw(bodies(kind), label="body"),
        content_type=data.draw(CONTENT_TYPES),
    )
    check_answer(response, "muster")
    process_pending()


@given(data=st.data())
@fuzz_settings(ci_examples=40, suppress_health_check=SHARED)
def test_pagerduty_enqueue_answers_any_body_in_its_error_shape(
    client, make_integration, data: st.DataObject
) -> None:
    integration = make_integration(Kind.PAGERDUTY)
    body = data.draw(pagerduty_bodies(integration.token), label="body")
    response = client.post("/v2/enqueue", body, content_type=data.draw(CONTENT_TYPES))
    check_answer(response, "pagerduty")
    process_pending()


@given(data=st.data())
@fuzz_settings(ci_examples=40, suppress_health_check=SHARED)
def test_opsgenie_urls_answer_any_body_in_their_error_shape(
    client, make_integration, data: st.DataObject
) -> None:
    integration = make_integration(Kind.OPSGENIE)
    identifier = quote(data.draw(st.text(min_size=1, max_size=20)), safe="")
    path = data.draw(
        st.sampled_from(
            ["/v2/alerts", f"/v2/alerts/{identifier}/close", "/v2/alerts/x/acknowledge"]
        )
    )
    query = data.draw(st.sampled_from(["", "?identifierType=alias", "?identifierType=id"]))
    response = client.post(
        path + query,
        data.draw(bodies("opsgenie"), label="body"),
        content_type=data.draw(CONTENT_TYPES),
        HTTP_AUTHORIZATION=f"GenieKey {integration.token}",
    )
    check_answer(response, "opsgenie")
    process_pending()


@given(data=st.data())
@fuzz_settings(ci_examples=20, suppress_health_check=SHARED)
def test_heartbeat_urls_answer_any_ping_in_the_error_shape(
    client, make_integration, data: st.DataObject
) -> None:
    token = make_integration(Kind.HEARTBEAT).token
    if data.draw(st.booleans()):
        token = quote(data.draw(st.text(min_size=1, max_size=70)), safe="")  # unknown, or odd
    response = client.post(
        f"/integrations/heartbeat/{token}/",
        data.draw(bodies("generic"), label="body"),
        content_type=data.draw(CONTENT_TYPES),
    )
    check_answer(response, "muster")
