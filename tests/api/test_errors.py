"""Every refusal is one JSON shape, and bad input is a 4xx, never a 500."""

from __future__ import annotations

import base64

import pytest

from alerts.models import Kind
from incidents.models import Incident, Service
from tests.helpers.api import API, add_alert, assert_error, open_incident

WRITES = [
    "services/",
    "incidents/",
    "incidents/{number}/resolve/",
    "incidents/{number}/snooze/",
    "incidents/{number}/severity/",
    "incidents/{number}/reassign/",
    "incidents/{number}/merge/",
    "incidents/{number}/notes/",
    "integrations/",
    "routing-rules/",
    "silences/",
    "tokens/",
]


@pytest.fixture
def number(service) -> int:
    return open_incident(service).number


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"a": 1,}', b"\xff\xfe", b'{"a": NaN}'],
    ids=["syntax", "comma", "bytes", "nan"],
)
def test_a_malformed_json_body_is_a_400_in_the_error_shape(as_alice, number, path, body):
    response = as_alice.generic(
        "POST", API + path.format(number=number), body, content_type="application/json"
    )
    assert_error(response, 400, "JSON parse error")


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_a_json_body_that_is_not_an_object_is_a_400(as_alice, number, path, body):
    response = as_alice.generic(
        "POST", API + path.format(number=number), body, content_type="application/json"
    )
    assert_error(response, 400)


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize("content_type", ["text/plain", "application/xml"])
def test_a_body_that_is_not_json_is_a_415_in_the_error_shape(as_alice, number, path, content_type):
    response = as_alice.generic(
        "POST", API + path.format(number=number), b"title=x", content_type=content_type
    )
    assert_error(response, 415, f'Unsupported media type "{content_type}"')


@pytest.mark.parametrize("verb", ["acknowledge", "unacknowledge", "escalate", "resolve"])
def test_a_verb_without_arguments_still_refuses_a_malformed_body(as_bob, number, verb):
    response = as_bob.generic(
        "POST", f"{API}incidents/{number}/{verb}/", b"{oops", content_type="application/json"
    )
    assert_error(response, 400, "JSON parse error")
    assert Incident.objects.get(number=number).status == "triggered"


def test_an_empty_body_is_fine_for_a_verb_without_arguments(as_bob, number):
    response = as_bob.generic(
        "POST", f"{API}incidents/{number}/acknowledge/", b"", content_type="application/json"
    )
    assert response.status_code == 200


def test_a_method_the_route_does_not_serve_is_a_405(as_alice, number):
    assert_error(as_alice.delete(f"{API}incidents/{number}/"), 405, 'Method "DELETE" not allowed.')
    assert_error(as_alice.put(f"{API}me/", {}, format="json"), 405)
    assert_error(as_alice.get(f"{API}incidents/{number}/acknowledge/"), 405)


def test_an_unknown_api_path_is_a_json_404_and_other_paths_are_not_api(as_alice, client, db):
    assert_error(as_alice.get(f"{API}nope/"), 404, "There is no API endpoint at /api/v1/nope/")
    assert_error(as_alice.get(f"{API}services/abc/"), 404)
    assert client.get("/not-api/").status_code == 404
    assert not client.get("/not-api/")["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("incidents/", {"title": "nul\u0000title", "service": "*"}),
        ("incidents/{number}/notes/", {"text": "nul\u0000"}),
        ("services/", {"name": "nul\u0000"}),
        ("services/", {"name": "ok", "group_by_labels": ["a\u0000"]}),
        ("silences/", {"service": "*", "ends_at": "2999-01-01T00:00:00Z", "comment": "\u0000"}),
        ("tokens/", {"name": "\u0000"}),
    ],
)
def test_nul_characters_are_a_400_not_a_database_error(as_alice, service, number, path, payload):
    payload = {k: (service.pk if v == "*" else v) for k, v in payload.items()}
    response = as_alice.post(API + path.format(number=number), payload, format="json")
    assert_error(response, 400, "Null characters are not allowed.")


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("get", "incidents/?service=99999999999999999999", None),
        ("get", "incidents/?severity=99999999999999999999", None),
        ("get", "alerts/?incident=99999999999999999999", None),
        ("get", "alerts/?service=99999999999999999999", None),
        ("get", "services/99999999999999999999/", None),
        ("post", "incidents/", {"title": "x", "service": 99999999999999999999}),
        ("post", "incidents/{number}/merge/", {"incidents": [99999999999999999999]}),
        (
            "post",
            "silences/",
            {"service": 2**70, "ends_at": "2999-01-01T00:00:00Z", "comment": "x"},
        ),
        ("post", "routing-rules/", {"matchers": [{"label": "a", "value": "b"}], "service": 2**64}),
        ("post", "incidents/{number}/snooze/", {"minutes": 2**70}),
        ("post", "incidents/{number}/snooze/", {"until": "9999-12-31T23:59:59Z"}),
    ],
)
def test_out_of_range_numbers_are_a_4xx_not_a_database_error(
    as_alice, number, method, path, payload
):
    url = API + path.format(number=number)
    response = getattr(as_alice, method)(url, payload, format="json")
    if response.status_code == 200:
        assert response.json()["results"] == []
    else:
        assert_error(response, response.status_code)
        assert 400 <= response.status_code < 500


def test_deleting_a_service_that_is_in_use_is_a_409_saying_why(as_alice, make_integration):
    service = Service.objects.create(name="busy")
    integration = make_integration(Kind.GENERIC, service=service)
    assert_error(as_alice.delete(f"{API}services/{service.pk}/"), 409, "integrations")
    assert Service.objects.filter(pk=service.pk).exists()

    integration.service = Service.objects.create(name="elsewhere")
    integration.save()
    add_alert(integration, service=service)
    assert_error(as_alice.delete(f"{API}services/{service.pk}/"), 409, "alerts")


def test_deleting_a_service_with_incidents_is_refused(as_alice, service, number):
    assert_error(as_alice.delete(f"{API}services/{service.pk}/"), 409, "incidents")
    assert Service.objects.filter(pk=service.pk).exists()


def test_a_duplicate_name_is_a_400_naming_the_field(as_alice, service, make_integration):
    make_integration(Kind.GENERIC, name="taken")
    assert_error(
        as_alice.post(f"{API}services/", {"name": "checkout"}, format="json"), 400, "name:"
    )
    response = as_alice.post(
        f"{API}integrations/",
        {"name": "taken", "kind": "generic", "service": service.pk},
        format="json",
    )
    assert_error(response, 400, "name:")


def test_several_problems_are_all_listed_with_a_summary_message(as_alice, db):
    response = as_alice.post(
        f"{API}integrations/", {"kind": "nagios", "heartbeat_interval_seconds": 1}, format="json"
    )
    error = assert_error(response, 400, "the request is invalid")
    fields = {p.split(":")[0] for p in error["problems"]}
    assert fields == {"name", "kind", "service", "heartbeat_interval_seconds"}


@pytest.mark.parametrize(
    "path",
    [
        "incidents/",
        "incidents/{incident}/timeline/",
        "alerts/",
        "silences/",
        "tokens/",
        "services/",
        "users/",
        "integrations/{integration}/requests/",
        "integrations/{integration}/rejections/",
    ],
)
@pytest.mark.parametrize(
    "position", ["abc", "2025-13-01T00:00:00Z", "9" * 40], ids=["text", "bad-date", "huge"]
)
def test_a_tampered_cursor_is_a_4xx_not_a_database_error(as_alice, world, path, position):
    cursor = base64.b64encode(f"o=0&r=0&p={position}".encode()).decode()
    response = as_alice.get(f"{API}{path.format(**world)}?cursor={cursor}")
    if response.status_code != 200:  # a name or username orders by text: any text is a place
        assert_error(response, 404, "Invalid cursor")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("incidents/?q=a%00b", "q"),
        ("incidents/?service=a%00", "service"),
        ("alerts/?fingerprint=%00", "fingerprint"),
        ("alerts/?status=fir%00ing", "status"),
    ],
)
def test_nul_characters_in_a_query_are_a_400_naming_the_parameter(as_alice, db, query, parameter):
    assert_error(as_alice.get(API + query), 400, f"{parameter} cannot contain NUL characters")


def test_an_unexpected_failure_is_a_500_in_the_error_shape_without_details(alice, monkeypatch):
    from rest_framework.test import APIClient

    from accounts.services import create_api_token
    from incidents import api

    def broken(queryset, params):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api, "_filter_incidents", broken)
    _, secret = create_api_token(alice, name="t")
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.get(API + "incidents/")
    assert_error(response, 500, "the error is logged")
    assert b"secret internals" not in response.content
