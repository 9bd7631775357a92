"""Bad input at every ingest URL: a 4xx JSON error naming the problem, recorded, never a 5xx."""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError, connection

from alerts.models import Alert, IngestRequest, Kind, Outcome
from alerts.processor import process_pending
from incidents.models import Incident
from tests.alerts.payloads import am_alert, am_batch, pd_event
from tests.helpers.ingest import load_fixture, results_of


@pytest.fixture
def am(make_integration):
    return make_integration(Kind.ALERTMANAGER, name="prometheus")


@pytest.fixture
def url(am):
    return f"/integrations/alertmanager/{am.token}/"


def rejected(integration):
    return IngestRequest.objects.filter(integration=integration, outcome=Outcome.REJECTED)


def error_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json")
    return response.json()["error"]


def deep_list(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# --- malformed bodies ------------------------------------------------------------------------


def test_malformed_json_is_400_naming_the_problem_and_recorded(client, url, am):
    body = b'{"receiver": "muster", "alerts": [}'

    response = client.post(url, body, content_type="application/json")

    assert response.status_code == 400
    assert "malformed JSON" in error_of(response)["message"]
    row = rejected(am).get()
    assert row.status_code == 400
    assert "malformed JSON" in row.reason
    assert bytes(row.body) == body
    assert row.content_type == "application/json"
    assert Alert.objects.count() == 0


def test_rejections_are_listed_for_admins(client, url, am, as_alice):
    client.post(url, b"{oops", content_type="application/json")
    client.post(url, b"<xml/>", content_type="application/xml")

    response = as_alice.get(f"/api/v1/integrations/{am.pk}/rejections/")

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [r["status_code"] for r in rows] == [415, 400]
    assert rows[0]["body"] == "<xml/>"
    assert "application/xml" in rows[0]["reason"]
    assert rows[1]["body"] == "{oops"
    assert all(r["outcome"] == "rejected" for r in rows)


def test_only_the_first_kib_of_a_rejected_body_is_kept(client, url, am):
    body = b"{" + b"x" * 5000

    client.post(url, body, content_type="application/json")

    assert bytes(rejected(am).get().body) == body[:1024]


def test_wrong_content_type_is_415(client, url, am):
    response = client.post(
        url, json.dumps(am_batch(am_alert("fp"))), content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert "application/json" in error_of(response)["message"]
    assert rejected(am).get().status_code == 415
    assert Alert.objects.count() == 0


def test_json_with_a_charset_is_fine(client, url):
    response = client.post(
        url, json.dumps(am_batch(am_alert("fp"))), content_type="application/json; charset=utf-8"
    )

    assert response.status_code == 200


def test_content_type_with_a_nul_is_refused_not_a_server_error(client, url, am):
    response = client.post(
        url, json.dumps(am_batch(am_alert("fp"))), content_type="application/json\x00x"
    )

    assert response.status_code == 415
    assert rejected(am).get().status_code == 415


def test_nul_in_a_content_type_parameter_is_accepted_not_a_server_error(client, url, am):
    response = client.post(
        url, json.dumps(am_batch(am_alert("fp"))), content_type="application/json; x=\x00"
    )

    assert response.status_code == 200
    assert IngestRequest.objects.get(integration=am).content_type == "application/json; x=\ufffd"


def test_empty_body_is_400(client, url, am):
    response = client.post(url, b"", content_type="application/json")

    assert response.status_code == 400
    assert "empty" in error_of(response)["message"]
    assert rejected(am).count() == 1


def test_non_utf8_body_is_400(client, url, am):
    body = b'{"alerts": [{"labels": {"alertname": "caf\xe9"}}]}'

    response = client.post(url, body, content_type="application/json")

    assert response.status_code == 400
    assert "UTF-8" in error_of(response)["message"]
    assert bytes(rejected(am).get().body) == body[:1024]


def test_nan_is_400(client, url):
    body = b'{"alerts": [{"labels": {"alertname": "x"}, "value": NaN}]}'

    response = client.post(url, body, content_type="application/json")

    assert response.status_code == 400
    assert "NaN" in error_of(response)["message"]


def test_raw_nul_byte_is_400(client, url, am):
    body = (
        json.dumps(am_batch(am_alert("fp", summary="a\x00b"))).encode().replace(b"\\u0000", b"\x00")
    )
    assert b"\x00" in body

    response = client.post(url, body, content_type="application/json")

    assert response.status_code == 400
    assert "malformed JSON" in error_of(response)["message"]
    assert b"\x00" in bytes(rejected(am).get().body)


def test_json_nul_character_in_a_label_is_stored_as_replacement_with_a_warning(post_json, url):
    response = post_json(url, am_batch(am_alert("fp", instance="db-1\u0000evil")))

    assert response.status_code == 200
    assert any("NUL" in w for w in response.json()["warnings"])
    alert = Alert.objects.get()
    assert alert.labels["instance"] == "db-1\ufffdevil"
    assert any("NUL" in w for w in alert.warnings)
    assert Incident.objects.count() == 1


def test_json_nul_character_everywhere_else_never_breaks_storage(post_json, url):
    nul = "\u0000"
    alert = am_alert(f"fp{nul}1", summary=f"sum{nul}mary", **{f"key{nul}": f"v{nul}"})
    alert["annotations"][f"note{nul}"] = f"x{nul}y"
    alert["generatorURL"] = f"http://prom{nul}.example.com/"
    batch = am_batch(alert, group_key=f"{{}}:{{alertname={nul}}}")
    batch["receiver"] = nul

    response = post_json(url, batch)

    assert response.status_code == 200
    stored = Alert.objects.get()
    assert nul not in stored.fingerprint
    assert nul not in stored.summary
    assert nul not in json.dumps(stored.labels)
    assert Incident.objects.count() == 1


def test_lone_surrogate_escape_is_accepted_with_replacement(client, url, am):
    body = (
        b'{"alerts": [{"status": "firing", "fingerprint": "fp\\ud800", '
        b'"labels": {"alertname": "Bad\\udc00Name", "x\\ud83d": "1"}, '
        b'"annotations": {"summary": "emoji \\ud83d\\ude00 ok"}}], "groupKey": "g\\udfff"}'
    )

    response = client.post(url, body, content_type="application/json")

    assert response.status_code == 200
    assert results_of(response)[0]["action"] == "opened"
    alert = Alert.objects.get()
    assert alert.labels["alertname"] == "Bad\ufffdName"
    assert alert.summary == "emoji \U0001f600 ok"
    assert IngestRequest.objects.get(integration=am, outcome=Outcome.ACCEPTED).body == body


# --- size and nesting ------------------------------------------------------------------------


def test_body_over_the_limit_is_413_and_its_start_recorded(client, url, am, settings):
    settings.INGEST_MAX_BODY_BYTES = 2048
    body = json.dumps(am_batch(*(am_alert(f"fp-{i}") for i in range(40)))).encode()
    assert len(body) > 2048

    response = client.post(url, body, content_type="application/json")

    assert response.status_code == 413
    assert "2048" in error_of(response)["message"]
    row = rejected(am).get()
    assert row.status_code == 413
    assert bytes(row.body) == body[:1024]
    assert Alert.objects.count() == 0


def test_body_just_under_the_limit_is_accepted(post_json, url, settings):
    batch = am_batch(am_alert("fp-1"))
    settings.INGEST_MAX_BODY_BYTES = len(json.dumps(batch).encode())

    assert post_json(url, batch).status_code == 200


def test_body_one_byte_over_the_limit_is_413(post_json, url, settings):
    batch = am_batch(am_alert("fp-1"))
    settings.INGEST_MAX_BODY_BYTES = len(json.dumps(batch).encode()) - 1

    assert post_json(url, batch).status_code == 413


def test_over_limit_pagerduty_event_is_413_in_pagerdutys_shape(post_json, settings, db):
    settings.INGEST_MAX_BODY_BYTES = 100
    event = pd_event("0" * 32, summary="x" * 200)

    response = post_json("/v2/enqueue", event)

    assert response.status_code == 413
    assert response.json()["status"] == "invalid event"


def test_hundred_thousand_nested_lists_are_400(client, url, am):
    response = client.post(url, deep_list(100_000), content_type="application/json")

    assert response.status_code == 400
    assert "nested too deeply" in error_of(response)["message"]
    assert rejected(am).count() == 1


def test_deeply_nested_custom_details_in_a_pagerduty_event_is_never_a_server_error(
    client, make_integration
):
    pd = make_integration(Kind.PAGERDUTY, name="pd")
    prefix, suffix = json.dumps(pd_event(pd.token)).rsplit("}", 1)
    event = (
        prefix.encode()[:-1] + b', "custom_details": ' + deep_list(5000) + b"}}" + suffix.encode()
    )
    json.loads(event.replace(deep_list(5000), b"[]"))  # well-formed apart from the depth

    response = client.post("/v2/enqueue", event, content_type="application/json")

    assert response.status_code in (202, 400)
    if response.status_code == 400:
        assert response.json()["status"] == "invalid event"
        assert any("nested" in e for e in response.json()["errors"])
    else:
        assert Incident.objects.count() == 1


def test_nesting_the_decoder_accepts_is_stored_cut_with_a_warning(client, make_integration):
    pd = make_integration(Kind.PAGERDUTY, name="pd")
    event = pd_event(pd.token)
    details: list = []
    for _ in range(400):
        details = [details]
    event["payload"]["custom_details"] = {"deep": details}

    response = client.post("/v2/enqueue", json.dumps(event), content_type="application/json")

    assert response.status_code == 202
    process_pending()
    alert = Alert.objects.get()
    assert any("nested deeper" in w for w in alert.warnings)
    assert len(alert.annotations["deep"]) < 400
    assert IngestRequest.objects.get(outcome=Outcome.ACCEPTED).body == json.dumps(event).encode()


# --- each format refuses what is not its shape -------------------------------------------------


@pytest.mark.parametrize("kind", [Kind.ALERTMANAGER, Kind.GRAFANA, Kind.GENERIC])
@pytest.mark.parametrize("payload", [42, "firing", None, True])
def test_json_that_is_not_an_object_is_400_for_url_formats(
    post_json, make_integration, kind, payload
):
    integration = make_integration(kind)

    response = post_json(f"/integrations/{kind}/{integration.token}/", payload)

    assert response.status_code == 400
    assert "payload must be a JSON object" in " ".join(error_of(response)["problems"])
    assert rejected(integration).get().status_code == 400


def test_json_that_is_not_an_object_is_400_for_pagerduty(post_json, db):
    response = post_json("/v2/enqueue", 42)

    assert response.status_code == 400
    assert response.json()["status"] == "invalid event"
    assert response.json()["errors"] == ["event must be a JSON object"]


def test_json_that_is_not_an_object_is_422_for_opsgenie(post_json, make_integration):
    og = make_integration(Kind.OPSGENIE, name="og")

    response = post_json("/v2/alerts", 42, headers={"Authorization": f"GenieKey {og.token}"})

    assert response.status_code == 422
    assert any("JSON object" in e for e in response.json()["errors"])
    assert rejected(og).get().status_code == 422


def test_alertmanager_body_without_alerts_is_400_naming_the_field(post_json, url, am):
    response = post_json(url, {"receiver": "muster", "status": "firing"})

    assert response.status_code == 400
    assert error_of(response)["problems"] == ["missing required field 'alerts'"]
    assert "alerts" in rejected(am).get().reason


def test_generic_alerts_missing_fields_are_400_listing_every_problem(post_json, make_integration):
    generic = make_integration(Kind.GENERIC, name="scripts")

    response = post_json(
        f"/integrations/generic/{generic.token}/",
        [{"summary": "ok"}, {"labels": {}}, {"summary": "x", "status": "exploded"}],
    )

    assert response.status_code == 400
    problems = error_of(response)["problems"]
    assert "[1]: missing required field 'summary'" in problems
    assert any(p.startswith("[2]: 'status' must be") for p in problems)
    assert Alert.objects.count() == 0  # all or nothing
    assert rejected(generic).get().reason == "; ".join(problems)


def test_partially_malformed_alertmanager_batch_keeps_every_alert_with_warnings(post_json, url, am):
    response = post_json(url, load_fixture("alertmanager", "malformed_batch"))

    assert response.status_code == 200
    body = response.json()
    assert body["received"] == 3
    assert len(results_of(response)) == 3
    assert Alert.objects.count() == 3
    listed = Alert.objects.filter(warnings__icontains="labels: expected an object").get()
    assert listed.labels == {}
    assert any("startsAt" in w for w in listed.warnings)
    assert IngestRequest.objects.get(integration=am, outcome=Outcome.ACCEPTED).alert_count == 3


# --- who is asking -----------------------------------------------------------------------------


def test_unknown_token_is_404(post_json, db):
    response = post_json("/integrations/alertmanager/0123456789abcdef0123456789abcdef/", {})

    assert response.status_code == 404
    assert error_of(response)["status"] == 404


def test_token_with_a_nul_is_404_not_a_server_error(post_json, db):
    response = post_json("/integrations/alertmanager/abc%00def/", am_batch(am_alert("fp")))

    assert response.status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/integrations/alertmanager/%2F/",  # a token that is a "/": no route matches
        "/integrations/alertmanager/",
        "/integrations/alertmanager/tok/extra/",
        "/v2/alerts/x/delete",
        "/v2/nothing",
    ],
)
def test_an_ingest_url_that_matches_no_route_is_404_in_the_error_shape(post_json, db, path):
    # Found by tests/alerts/test_fuzz_ingest.py: these got Django's HTML page, not JSON.
    response = post_json(path, am_batch(am_alert("fp")))

    assert response.status_code == 404
    assert "no ingest endpoint" in error_of(response)["message"]


def test_token_of_another_kind_is_404(post_json, make_integration):
    grafana = make_integration(Kind.GRAFANA, name="grafana")

    response = post_json(f"/integrations/alertmanager/{grafana.token}/", am_batch(am_alert("fp")))

    assert response.status_code == 404
    assert Alert.objects.count() == 0


def test_unknown_kind_is_404(post_json, am):
    response = post_json(f"/integrations/nagios/{am.token}/", {})

    assert response.status_code == 404


def test_rotated_token_old_url_is_404_and_new_url_works(post_json, am, as_alice):
    old = f"/integrations/alertmanager/{am.token}/"

    rotated = as_alice.post(f"/api/v1/integrations/{am.pk}/rotate/")

    assert rotated.status_code == 200
    new_token = rotated.json()["token"]
    assert new_token != am.token
    assert post_json(old, am_batch(am_alert("fp"))).status_code == 404
    fresh = post_json(f"/integrations/alertmanager/{new_token}/", am_batch(am_alert("fp")))
    assert fresh.status_code == 200
    assert Incident.objects.count() == 1


def test_disabled_integration_is_403_and_recorded_with_its_body(client, url, am):
    am.enabled = False
    am.save()
    body = json.dumps(am_batch(am_alert("fp"))).encode()

    response = client.post(url, body, content_type="application/json")

    assert response.status_code == 403
    assert "disabled" in error_of(response)["message"]
    row = rejected(am).get()
    assert row.status_code == 403
    assert bytes(row.body) == body[:1024]
    assert Alert.objects.count() == 0


# A sound request is stored by one statement that checks the token too; whatever that statement
# refuses is looked at again, so the answer is the same as if the token had been checked first.


@pytest.mark.parametrize(
    "body",
    [b"{oops", b"x" * 2048, json.dumps(am_batch(am_alert("fp"))).encode()],
    ids=["malformed", "over-limit", "sound"],
)
def test_an_unknown_token_is_404_whatever_the_body(client, db, settings, body):
    settings.INGEST_MAX_BODY_BYTES = 1024
    url = "/integrations/alertmanager/0123456789abcdef0123456789abcdef/"

    response = client.post(url, body, content_type="application/json")

    assert response.status_code == 404
    assert IngestRequest.objects.count() == 0


def test_a_disabled_integration_is_403_even_for_a_malformed_body(client, url, am):
    am.enabled = False
    am.save()

    response = client.post(url, b"{oops", content_type="application/json")

    assert response.status_code == 403
    assert rejected(am).get().status_code == 403


def test_a_signing_integration_checks_the_signature_before_the_body(client, make_integration):
    signed = make_integration(Kind.GRAFANA, name="signed", hmac_secret="s3cret")

    response = client.post(
        f"/integrations/grafana/{signed.token}/", b"{oops", content_type="application/json"
    )

    assert response.status_code == 401
    assert "signature" in error_of(response)["message"]
    assert not IngestRequest.objects.filter(outcome=Outcome.ACCEPTED).exists()


def test_a_token_disabled_after_its_integration_was_read_stores_nothing(client, url, am):
    # The statement that stores checks `enabled` itself: a request racing a disable never
    # slips in. (Here the integration is disabled by SQL behind any Python object's back.)
    type(am).objects.filter(pk=am.pk).update(enabled=False)

    response = client.post(
        url, json.dumps(am_batch(am_alert("fp"))), content_type="application/json"
    )

    assert response.status_code == 403
    assert not IngestRequest.objects.filter(outcome=Outcome.ACCEPTED).exists()


@pytest.mark.django_db(transaction=True)
def test_a_database_that_cannot_store_is_503_with_retry_after(client, make_integration):
    # A real PostgreSQL refusal (a trigger raising, as a full disk or a failover would): the
    # sender is told to retry, and Alertmanager retries a 5xx (and only a 5xx).
    from django.db import connection

    am = make_integration(Kind.ALERTMANAGER, name="refusing")
    table = IngestRequest._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION muster_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER muster_test_refuse BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION muster_test_refuse()"
        )
    try:
        response = client.post(
            f"/integrations/alertmanager/{am.token}/",
            json.dumps(am_batch(am_alert("fp"))),
            content_type="application/json",
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER muster_test_refuse ON {table}")
            cursor.execute("DROP FUNCTION muster_test_refuse()")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "retry" in error_of(response)["message"]
    assert error_of(response)["problems"] == [error_of(response)["message"]]  # the whole shape
    assert not IngestRequest.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/integrations/alertmanager/{token}/",
        "/v2/enqueue",
        "/v2/alerts",
        "/v2/alerts/some-alias/close",
        "/v2/alerts/some-alias/acknowledge",
    ],
)
def test_get_on_an_ingest_url_is_405(client, am, path):
    response = client.get(path.format(token=am.token))

    assert response.status_code == 405
    assert "POST" in response["Allow"]
    assert response.json()["error"]["status"] == 405


def test_url_without_its_trailing_slash_works_too(post_json, am, make_integration):
    heartbeat = make_integration(Kind.HEARTBEAT, name="cron")

    response = post_json(f"/integrations/alertmanager/{am.token}", am_batch(am_alert("fp")))

    assert response.status_code == 200
    assert Incident.objects.count() == 1
    assert post_json(f"/integrations/heartbeat/{heartbeat.token}", b"").status_code == 200


def _database_down(execute, sql, params, many, context):
    # What psycopg raises while PostgreSQL restarts, through Django's own query path.
    raise OperationalError("terminating connection due to administrator command")


@pytest.mark.parametrize(
    ("kind", "path", "body", "headers"),
    [
        ("alertmanager", "/integrations/alertmanager/{token}/", am_batch(am_alert("fp")), {}),
        ("generic", "/integrations/generic/{token}/", {"summary": "disk full"}, {}),
        ("pagerduty", "/v2/enqueue", "pd", {}),
        ("opsgenie", "/v2/alerts", {"message": "disk full"}, "genie"),
        ("opsgenie", "/v2/alerts/disk/close", {}, "genie"),
        ("opsgenie", "/v2/alerts/disk/acknowledge", {}, "genie"),
        ("heartbeat", "/integrations/heartbeat/{token}/", {}, {}),
    ],
)
def test_an_unreachable_database_is_a_503_with_retry_after_on_every_ingest_path(
    client, make_integration, kind, path, body, headers
):
    """Found by bench/chaos.py: during a PostgreSQL restart the PagerDuty path answered 500
    (its integration lookup was outside the guard), and senders do not all retry a 500."""
    integration = make_integration(kind, name=f"{kind} sender")
    if body == "pd":
        body = pd_event(integration.token)
    if headers == "genie":
        headers = {"Authorization": f"GenieKey {integration.token}"}
    with connection.execute_wrapper(_database_down):
        response = client.post(
            path.format(token=integration.token),
            json.dumps(body),
            content_type="application/json",
            headers=headers,
        )

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "retry" in response.content.decode().lower()
