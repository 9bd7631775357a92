"""Setup pages: the index, services and integrations (with the test alert)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry
from alerts.models import Alert, IngestRequest, Integration, Kind, Outcome
from alerts.processor import process_pending
from incidents.models import Incident, Service, Source, Status
from incidents.opening import open_incident
from oncall.models import EscalationPolicy, ServicePolicy

pytestmark = pytest.mark.django_db


def csrf_client(user) -> Client:
    """A client that, like a browser, must send the CSRF token it was given."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def post(client: Client, url: str, data: dict | None = None):
    """POST a form with the CSRF token from a page just fetched, as the browser does."""
    client.get("/setup/")
    token = client.cookies["csrftoken"].value
    return client.post(url, {**(data or {}), "csrfmiddlewaretoken": token})


def add_alert(integration: Integration, n: int, incident: Incident | None = None) -> Alert:
    now = timezone.now()
    return Alert.objects.create(
        integration=integration,
        service=integration.service,
        incident=incident,
        fingerprint=f"fp-{n}",
        status="firing",
        summary=f"Disk full on db-{n}",
        labels={"alertname": "DiskFull"},
        first_seen=now,
        last_seen=now,
    )


# --- index ------------------------------------------------------------------------------------


def test_index_links_each_area_with_its_count(web_charlie, service, make_integration):
    make_integration(Kind.GENERIC, name="curl")
    make_integration(Kind.ALERTMANAGER, name="prom", enabled=False)
    page = web_charlie.get("/setup/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<a href="/setup/services/">Services</a> <span class="badge" data-count>1</span>' in html
    assert (
        '<a href="/setup/integrations/">Integrations</a> <span class="badge" data-count>2</span>'
        in html
    )
    assert "Where alerts come from (1 disabled)." in html
    for path in ("/setup/routing/", "/setup/silences/", "/setup/policies/", "/setup/runbooks/"):
        assert f'<a href="{path}">' in html
    assert "changing it needs the admin role" in html


def test_setup_needs_login():
    response = Client().get("/setup/services/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/setup/services/"


# --- services ---------------------------------------------------------------------------------


def test_service_list_shows_policy_and_counts(web_charlie, service, make_integration):
    policy = EscalationPolicy.objects.create(name="Checkout primary")
    ServicePolicy.objects.create(service=service, policy=policy)
    make_integration(Kind.GENERIC, name="curl")
    open_incident(service, title="Slow", severity=2, source=Source.ALERT, actor_name="prom")
    Service.objects.create(name="search", urgency_override="low", auto_resolve=False)
    html = web_charlie.get("/setup/services/").content.decode()
    assert f'<a href="/setup/policies/{policy.pk}/">Checkout primary</a>' in html
    row = html.split(f'id="service-{service.pk}"')[1].split("</tr>")[0]
    assert f'<a href="/setup/integrations/?service={service.pk}">1</a>' in row
    assert "<td>1</td>" in row  # one open incident
    search = Service.objects.get(name="search")
    row = html.split(f'id="service-{search.pk}"')[1].split("</tr>")[0]
    assert '<span class="problem">none</span>' in row
    assert "<td>low</td>" in row
    assert "New service" not in html  # observers do not get the button


def test_service_list_query_count(web_charlie, django_assert_max_num_queries, make_integration):
    policy = EscalationPolicy.objects.create(name="Primary")
    for n in range(69):  # and checkout, make_integration's
        service = Service.objects.create(name=f"service-{n:02}")
        ServicePolicy.objects.create(service=service, policy=policy)
        make_integration(Kind.GENERIC, name=f"curl-{n}", service=service)
    with django_assert_max_num_queries(5):
        page = web_charlie.get("/setup/services/")
    html = page.content.decode()
    assert html.count('<tr id="service-') == 50
    assert "Page 1 of 2 (70 in all)" in html
    assert (
        web_charlie.get("/setup/services/?page=2").content.decode().count('<tr id="service-') == 20
    )


def test_admin_creates_a_service_with_a_policy(alice):
    policy = EscalationPolicy.objects.create(name="Primary")
    client = csrf_client(alice)
    response = post(
        client,
        "/setup/services/new/",
        {
            "name": "payments",
            "description": "Card payments",
            "urgency_override": "high",
            "auto_resolve": "on",
            "ack_timeout_minutes": "30",
            "group_by_labels": "alertname, cluster",
            "policy": str(policy.pk),
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/setup/services/"
    service = Service.objects.get(name="payments")
    assert (service.description, service.urgency_override, service.auto_resolve) == (
        "Card payments",
        "high",
        True,
    )
    assert service.ack_timeout_minutes == 30
    assert service.group_by_labels == ["alertname", "cluster"]
    assert ServicePolicy.objects.get(service=service).policy == policy
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert actions == {"created"}
    assert "Saved service payments." in client.get("/setup/services/").content.decode()


def test_admin_edits_a_service_and_removes_its_policy(alice, service):
    policy = EscalationPolicy.objects.create(name="Primary")
    ServicePolicy.objects.create(service=service, policy=policy)
    client = csrf_client(alice)
    page = client.get(f"/setup/services/{service.pk}/").content.decode()
    assert 'value="checkout"' in page
    assert f'<option value="{policy.pk}" selected>Primary</option>' in page
    response = post(
        client,
        f"/setup/services/{service.pk}/",
        {"name": "checkout-v2", "urgency_override": "", "policy": "", "group_by_labels": ""},
    )
    assert response.status_code == 302
    service.refresh_from_db()
    assert service.name == "checkout-v2"
    assert service.auto_resolve is False  # an unticked box
    assert not ServicePolicy.objects.filter(service=service).exists()


def test_service_form_shows_errors_next_to_fields(web_alice, service):
    too_many = ", ".join(f"l{n}" for n in range(21))
    response = web_alice.post(
        "/setup/services/new/",
        {"name": "checkout", "ack_timeout_minutes": "-1", "group_by_labels": too_many},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert Service.objects.count() == 1
    name_field = html.split('for="id_name"')[1].split('<div class="field')[0]
    assert "Service with this Name already exists." in name_field
    labels_field = html.split('for="id_group_by_labels"')[1].split('<div class="field')[0]
    assert "at most 20 labels" in labels_field
    timeout_field = html.split('for="id_ack_timeout_minutes"')[1].split('<div class="field')[0]
    assert "Ensure this value is greater than or equal to 0." in timeout_field


def test_post_without_csrf_token_is_refused(alice):
    client = csrf_client(alice)
    response = client.post("/setup/services/new/", {"name": "payments"})
    assert response.status_code == 403
    assert not Service.objects.filter(name="payments").exists()


@pytest.mark.parametrize("who", ["web_bob", "web_charlie"])
def test_only_admins_change_services(request, who, service):
    client = request.getfixturevalue(who)
    assert client.get(f"/setup/services/{service.pk}/").status_code == 200
    assert client.post("/setup/services/new/", {"name": "x"}).status_code == 403
    response = client.post(f"/setup/services/{service.pk}/", {"name": "renamed"})
    assert response.status_code == 403
    assert Service.objects.get(pk=service.pk).name == "checkout"


# --- integrations -----------------------------------------------------------------------------


def test_integration_list_groups_by_service(web_charlie, service, make_integration):
    other = Service.objects.create(name="search")
    make_integration(Kind.GENERIC, name="curl")
    make_integration(Kind.ALERTMANAGER, name="prom", enabled=False)
    make_integration(Kind.GRAFANA, name="grafana", service=other)
    html = web_charlie.get("/setup/integrations/").content.decode()
    names = [
        part.split("</a>")[0].split(">")[-1] for part in html.split("/setup/integrations/")[1:]
    ]
    assert [n for n in names if n in ("curl", "prom", "grafana")] == ["curl", "prom", "grafana"]
    assert '<span class="badge muted">disabled</span>' in html
    only = web_charlie.get(f"/setup/integrations/?service={other.pk}").content.decode()
    assert "Integrations of search" in only
    assert ">grafana</a>" in only and ">curl</a>" not in only


def test_integration_list_query_count(web_charlie, django_assert_max_num_queries, service):
    Integration.objects.bulk_create(
        Integration(name=f"i-{n:03}", kind=Kind.GENERIC, service=service, token=f"t{n}")
        for n in range(80)
    )
    with django_assert_max_num_queries(5):
        html = web_charlie.get("/setup/integrations/").content.decode()
    assert html.count('<tr id="integration-') == 50


def test_admin_creates_an_integration(alice, service):
    client = csrf_client(alice)
    response = post(
        client,
        "/setup/integrations/new/",
        {"kind": "alertmanager", "name": "prometheus", "service": str(service.pk)},
    )
    integration = Integration.objects.get(name="prometheus")
    assert response.status_code == 302
    assert response["Location"] == f"/setup/integrations/{integration.pk}/"
    assert integration.kind == Kind.ALERTMANAGER
    assert integration.service == service
    assert AuditEntry.objects.get().action == "created"


def test_integration_form_errors(web_alice, service, make_integration):
    make_integration(Kind.GENERIC, name="curl")
    response = web_alice.post(
        "/setup/integrations/new/", {"kind": "carrier-pigeon", "name": "curl", "service": ""}
    )
    html = response.content.decode()
    assert response.status_code == 200
    kind = html.split('for="id_kind"')[1].split('<div class="field')[0]
    assert "Select a valid choice. carrier-pigeon is not one of the available choices." in kind
    name = html.split('for="id_name"')[1].split('<div class="field')[0]
    assert "Integration with this Name already exists." in name
    assert "This field is required." in html.split('for="id_service"')[1]


def test_integration_page_shows_url_with_copy_button_to_admins(
    web_alice, web_charlie, make_integration, settings
):
    integration = make_integration(Kind.ALERTMANAGER, name="prom")
    url = f"{settings.PUBLIC_URL}/integrations/alertmanager/{integration.token}/"
    html = web_alice.get(f"/setup/integrations/{integration.pk}/").content.decode()
    assert f'<input id="integration-url" class="copy-field" readonly value="{url}">' in html
    assert '<button type="button" data-copy="#integration-url">Copy</button>' in html
    assert "Send test alert" in html
    observer = web_charlie.get(f"/setup/integrations/{integration.pk}/").content.decode()
    assert integration.token not in observer
    assert "The URL and key are shown to admins only." in observer
    assert "Send test alert" not in observer


@pytest.mark.parametrize(
    ("kind", "key_label", "url_field"),
    [
        (Kind.PAGERDUTY, "Integration key (routing_key)", "/v2/enqueue"),
        (Kind.OPSGENIE, "API key (GenieKey)", "/"),
    ],
)
def test_keyed_integrations_show_key_and_url(
    web_alice, make_integration, settings, kind, key_label, url_field
):
    integration = make_integration(kind)
    html = web_alice.get(f"/setup/integrations/{integration.pk}/").content.decode()
    assert f'<label for="integration-key">{key_label}</label>' in html
    assert (
        f'<input id="integration-key" class="copy-field" readonly value="{integration.token}">'
        in html
    )
    assert (
        f'<input id="integration-base-url" class="copy-field" readonly '
        f'value="{settings.PUBLIC_URL}{url_field}">'
    ) in html
    assert 'data-copy="#integration-key"' in html


def test_integration_page_lists_recent_alerts_and_requests(
    web_charlie, make_integration, django_assert_max_num_queries, service
):
    integration = make_integration(Kind.GENERIC, name="curl")
    incident = open_incident(service, title="Disk", severity=2, source=Source.ALERT, actor_name="x")
    for n in range(30):
        add_alert(integration, n, incident=incident)
    now = timezone.now()
    IngestRequest.objects.bulk_create(
        IngestRequest(
            integration=integration,
            received_at=now - timezone.timedelta(seconds=n),
            outcome=Outcome.ACCEPTED,
            status_code=200,
            alert_count=1,
            processed_at=now,
            warnings=["label 'x' is not a string; converted"] if n == 3 else [],
        )
        for n in range(30)
    )
    rejected = IngestRequest.objects.create(
        integration=integration,
        received_at=now + timezone.timedelta(seconds=1),
        outcome=Outcome.REJECTED,
        status_code=400,
        reason="payload is not a valid Generic JSON",
    )
    with django_assert_max_num_queries(6):
        html = web_charlie.get(f"/setup/integrations/{integration.pk}/").content.decode()
    assert html.count('<tr id="alert-') == 20
    assert "Disk full on db-29" in html and "Disk full on db-9</td>" not in html
    assert f'href="/incidents/{incident.number}/">#{incident.number}</a>' in html
    assert html.count('<tr id="request-') == 20
    assert f'<tr id="request-{rejected.pk}" data-state="rejected">' in html
    assert '<div class="problem">payload is not a valid Generic JSON</div>' in html
    assert "label &#x27;x&#x27; is not a string; converted" in html
    problems = web_charlie.get(f"/setup/integrations/{integration.pk}/?problems=1").content
    assert problems.decode().count('<tr id="request-') == 2


def test_admin_rotates_the_token_after_confirming(alice, make_integration):
    integration = make_integration(Kind.GENERIC)
    old = integration.token
    client = csrf_client(alice)
    confirm = client.get(f"/setup/integrations/{integration.pk}/rotate/").content.decode()
    assert "The current URL stops working at once" in confirm
    assert Integration.objects.get(pk=integration.pk).token == old  # a GET changes nothing
    response = post(client, f"/setup/integrations/{integration.pk}/rotate/")
    assert response.status_code == 302
    integration.refresh_from_db()
    assert integration.token != old
    assert integration.token_rotated_at is not None
    entry = AuditEntry.objects.get()
    assert entry.changes == {"token": ["[secret]", "[secret]"]}


def test_admin_disables_and_enables(alice, make_integration):
    integration = make_integration(Kind.GENERIC)
    client = csrf_client(alice)
    post(client, f"/setup/integrations/{integration.pk}/enabled/", {"enabled": "0"})
    assert Integration.objects.get(pk=integration.pk).enabled is False
    html = client.get(f"/setup/integrations/{integration.pk}/").content.decode()
    assert '<span class="badge problem" id="integration-state">disabled</span>' in html
    post(client, f"/setup/integrations/{integration.pk}/enabled/", {"enabled": "1"})
    assert Integration.objects.get(pk=integration.pk).enabled is True


def test_heartbeat_settings_are_edited_and_checked(alice, make_integration):
    integration = make_integration(Kind.HEARTBEAT, name="backup-cron")
    client = csrf_client(alice)
    html = client.get(f"/setup/integrations/{integration.pk}/").content.decode()
    assert '<label for="id_heartbeat_interval_seconds">Ping interval (seconds):</label>' in html
    assert "Send test alert" not in html
    bad = post(
        client,
        f"/setup/integrations/{integration.pk}/",
        {
            "name": "backup-cron",
            "service": integration.service_id,
            "heartbeat_interval_seconds": "5",
            "heartbeat_grace_seconds": "60",
        },
    )
    assert bad.status_code == 200
    field = bad.content.decode().split('for="id_heartbeat_interval_seconds"')[1]
    assert "must be at least 10 seconds" in field.split('<div class="field')[0]
    good = post(
        client,
        f"/setup/integrations/{integration.pk}/",
        {
            "name": "backup-cron",
            "service": integration.service_id,
            "heartbeat_interval_seconds": "3600",
            "heartbeat_grace_seconds": "300",
        },
    )
    assert good.status_code == 302
    integration.refresh_from_db()
    assert (integration.heartbeat_interval_seconds, integration.heartbeat_grace_seconds) == (
        3600,
        300,
    )


def test_grafana_signing_secret_is_kept_unless_replaced(web_alice, make_integration):
    integration = make_integration(Kind.GRAFANA, hmac_secret="s3cret")
    data = {"name": integration.name, "service": integration.service_id, "hmac_header": "X-Sig"}
    web_alice.post(f"/setup/integrations/{integration.pk}/", data)
    integration.refresh_from_db()
    assert (integration.hmac_secret, integration.hmac_header) == ("s3cret", "X-Sig")
    web_alice.post(f"/setup/integrations/{integration.pk}/", {**data, "hmac_secret": "new"})
    integration.refresh_from_db()
    assert integration.hmac_secret == "new"
    assert "s3cret" not in web_alice.get(f"/setup/integrations/{integration.pk}/").content.decode()


@pytest.mark.parametrize("who", ["web_bob", "web_charlie"])
def test_only_admins_change_integrations(request, who, make_integration, service):
    client = request.getfixturevalue(who)
    integration = make_integration(Kind.GENERIC)
    base = f"/setup/integrations/{integration.pk}/"
    for url, data in [
        ("/setup/integrations/new/", {"kind": "generic", "name": "x", "service": service.pk}),
        (base, {"name": "renamed", "service": service.pk}),
        (base + "rotate/", {}),
        (base + "enabled/", {"enabled": "0"}),
        (base + "test/", {}),
    ]:
        assert client.post(url, data).status_code == 403, url
    integration.refresh_from_db()
    assert (integration.name, integration.enabled) == ("generic-1", True)
    assert not IngestRequest.objects.exists()


# --- the test alert ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", [Kind.ALERTMANAGER, Kind.GRAFANA, Kind.PAGERDUTY, Kind.OPSGENIE, Kind.GENERIC]
)
def test_send_test_alert_opens_an_incident(alice, make_integration, kind):
    integration = make_integration(kind, name="source")
    client = csrf_client(alice)
    response = post(client, f"/setup/integrations/{integration.pk}/test/")
    stored = IngestRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == (
        f"/setup/integrations/{integration.pk}/?sent={stored.pk}#request-{stored.pk}"
    )
    assert (stored.outcome, stored.alert_count) == (Outcome.ACCEPTED, 1)
    process_pending()  # what the worker kicked by the test does just after
    alert = Alert.objects.get()
    assert alert.summary == "Test alert from Muster, sent by alice"
    assert alert.integration == integration
    assert "MusterTestAlert" in alert.labels.values()  # alertname; PagerDuty's: class
    incident = alert.incident
    assert (incident.title, incident.status) == (
        "Test alert from Muster, sent by alice",
        Status.TRIGGERED,
    )
    html = client.get(response["Location"]).content.decode()
    assert f'<tr id="request-{stored.pk}" data-state="processed" class="just-sent">' in html
    assert "(your test alert)" in html
    assert f'<a href="/incidents/{incident.number}/">#{incident.number}</a>' in html
    assert f"Test alert sent as request {stored.pk}" in html


def test_no_test_alert_for_a_disabled_integration(web_alice, make_integration):
    integration = make_integration(Kind.GENERIC, enabled=False)
    response = web_alice.post(f"/setup/integrations/{integration.pk}/test/", follow=True)
    assert "No test alert sent: integration &#x27;generic-1&#x27; is disabled." in (
        response.content.decode()
    )
    assert not IngestRequest.objects.exists()


def test_no_test_alert_for_a_heartbeat(web_alice, make_integration):
    integration = make_integration(Kind.HEARTBEAT)
    response = web_alice.post(f"/setup/integrations/{integration.pk}/test/", follow=True)
    assert "takes pings, not alerts" in response.content.decode()
    assert not IngestRequest.objects.exists()
