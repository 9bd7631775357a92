"""Setup pages: routing rules (ordered) and silences."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from alerts.models import Kind, RoutingRule, Silence
from incidents.models import Service
from tests.web.test_setup_pages import csrf_client, post

pytestmark = pytest.mark.django_db


@pytest.fixture
def db_service(db) -> Service:
    return Service.objects.create(name="database")


def make_rule(name: str, service: Service, position: int, **fields) -> RoutingRule:
    fields.setdefault("matchers", [{"label": "team", "op": "=", "value": name}])
    return RoutingRule.objects.create(name=name, service=service, position=position, **fields)


def order() -> list[str]:
    return list(RoutingRule.objects.order_by("position", "id").values_list("name", flat=True))


# --- routing rules ----------------------------------------------------------------------------


def test_rules_are_listed_in_order_with_their_matchers(
    web_charlie, db_service, service, make_integration
):
    prom = make_integration(Kind.ALERTMANAGER, name="prom")
    make_rule("second", service, 5)
    make_rule(
        "first",
        db_service,
        1,
        integration=prom,
        matchers=[
            {"label": "team", "op": "=", "value": "db"},
            {"label": "host", "op": "=~", "value": "db-.*"},
        ],
    )
    html = web_charlie.get("/setup/routing/").content.decode()
    first, second = html.index("<strong>first</strong>"), html.index("<strong>second</strong>")
    assert first < second
    assert "<code>team=&quot;db&quot;, host=~&quot;db-.*&quot;</code>" in html
    assert "for prom" in html and "every integration" in html
    assert "New rule" not in html and "Delete" not in html  # observers only read


def test_rule_list_query_count(
    web_charlie, django_assert_max_num_queries, service, make_integration
):
    prom = make_integration(Kind.ALERTMANAGER, name="prom")
    RoutingRule.objects.bulk_create(
        RoutingRule(
            name=f"r{n}",
            service=service,
            position=n,
            integration=prom if n % 2 else None,
            matchers=[{"label": "n", "op": "=", "value": str(n)}],
        )
        for n in range(120)
    )
    with django_assert_max_num_queries(3):
        html = web_charlie.get("/setup/routing/").content.decode()
    assert html.count('<li id="rule-') == 120


def test_admin_creates_a_rule_last_in_order(alice, service, db_service):
    make_rule("existing", service, 3)
    client = csrf_client(alice)
    response = post(
        client,
        "/setup/routing/new/",
        {"name": "db team", "matchers": 'team="db", env!=dev', "service": db_service.pk},
    )
    assert response.status_code == 302
    rule = RoutingRule.objects.get(name="db team")
    assert rule.matchers == [
        {"label": "team", "op": "=", "value": "db"},
        {"label": "env", "op": "!=", "value": "dev"},
    ]
    assert rule.position == 4
    assert rule.integration is None
    assert order() == ["existing", "db team"]
    assert AuditEntry.objects.get().action == "created"


def test_rule_matchers_errors_are_shown_next_to_the_field(web_alice, service):
    response = web_alice.post(
        "/setup/routing/new/", {"name": "bad", "matchers": 'host=~"db-("', "service": service.pk}
    )
    html = response.content.decode()
    field = html.split('for="id_matchers"')[1].split('<div class="field')[0]
    assert "invalid regex for &#x27;host&#x27;: missing ): db-(" in field
    empty = web_alice.post("/setup/routing/new/", {"name": "bad", "service": service.pk})
    field = empty.content.decode().split('for="id_matchers"')[1].split('<div class="field')[0]
    assert "This field is required." in field
    assert not RoutingRule.objects.exists()


def test_admin_edits_a_rule(web_alice, service, db_service):
    rule = make_rule("db", service, 0)
    page = web_alice.get(f"/setup/routing/{rule.pk}/").content.decode()
    assert 'value="team=&quot;db&quot;"' in page
    web_alice.post(
        f"/setup/routing/{rule.pk}/",
        {"name": "db", "matchers": "team=~db.*", "service": db_service.pk},
    )
    rule.refresh_from_db()
    assert rule.matchers == [{"label": "team", "op": "=~", "value": "db.*"}]
    assert rule.service == db_service


def test_rules_move_up_and_down(alice, service):
    rules = [make_rule(name, service, 0) for name in ("a", "b", "c")]  # equal positions: by id
    client = csrf_client(alice)
    post(client, f"/setup/routing/{rules[2].pk}/move/", {"direction": "up"})
    assert order() == ["a", "c", "b"]
    post(client, f"/setup/routing/{rules[0].pk}/move/", {"direction": "down"})
    assert order() == ["c", "a", "b"]
    post(client, f"/setup/routing/{rules[2].pk}/move/", {"direction": "up"})  # already first
    assert order() == ["c", "a", "b"]
    assert list(RoutingRule.objects.order_by("position").values_list("position", flat=True)) == [
        0,
        1,
        2,
    ]


def test_rule_is_deleted_after_confirming(alice, service):
    rule = make_rule("db", service, 0)
    client = csrf_client(alice)
    confirm = client.get(f"/setup/routing/{rule.pk}/delete/").content.decode()
    assert "Delete routing rule db?" in confirm
    assert RoutingRule.objects.exists()
    response = post(client, f"/setup/routing/{rule.pk}/delete/")
    assert response.status_code == 302
    assert not RoutingRule.objects.exists()
    assert AuditEntry.objects.get().action == "deleted"


@pytest.mark.parametrize("who", ["web_bob", "web_charlie"])
def test_only_admins_change_rules(request, who, service):
    client = request.getfixturevalue(who)
    rule = make_rule("db", service, 0)
    data = {"name": "x", "matchers": "a=b", "service": service.pk}
    assert client.post("/setup/routing/new/", data).status_code == 403
    assert client.post(f"/setup/routing/{rule.pk}/", data).status_code == 403
    assert client.post(f"/setup/routing/{rule.pk}/delete/").status_code == 403
    assert client.post(f"/setup/routing/{rule.pk}/move/", {"direction": "up"}).status_code == 403
    assert order() == ["db"]


# --- silences ---------------------------------------------------------------------------------


def make_silence(comment: str, starts: timedelta, ends: timedelta, **fields) -> Silence:
    now = timezone.now()
    fields.setdefault("matchers", [{"label": "env", "op": "=", "value": "staging"}])
    return Silence.objects.create(
        comment=comment, starts_at=now + starts, ends_at=now + ends, **fields
    )


def test_silences_are_listed_active_upcoming_expired(web_charlie, alice, service):
    make_silence("deploy", timedelta(hours=-1), timedelta(hours=1), created_by=alice)
    make_silence("tonight", timedelta(hours=5), timedelta(hours=7), matchers=[], service=service)
    make_silence("yesterday", timedelta(days=-1), timedelta(hours=-20))
    active = web_charlie.get("/setup/silences/").content.decode()
    assert "<td>deploy</td>" in active and "tonight" not in active and "yesterday" not in active
    assert "<code>env=&quot;staging&quot;</code>" in active
    assert "<td>alice</td>" in active
    assert "Expire now" not in active and "New silence" not in active  # an observer
    upcoming = web_charlie.get("/setup/silences/?show=upcoming").content.decode()
    assert "<td>tonight</td>" in upcoming and "service checkout" in upcoming
    expired = web_charlie.get("/setup/silences/?show=expired").content.decode()
    assert "<td>yesterday</td>" in expired and "deploy" not in expired


def test_silence_list_query_count(web_charlie, django_assert_max_num_queries, alice, service):
    now = timezone.now()
    Silence.objects.bulk_create(
        Silence(
            comment=f"s{n}",
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=1, minutes=n),
            service=service,
            created_by=alice,
            matchers=[{"label": "n", "op": "=", "value": str(n)}],
        )
        for n in range(80)
    )
    with django_assert_max_num_queries(4):
        html = web_charlie.get("/setup/silences/").content.decode()
    assert html.count('<tr id="silence-') == 50


def test_responder_creates_a_silence(bob, service):
    client = csrf_client(bob)
    form = client.get("/setup/silences/new/").content.decode()
    assert '<label for="id_starts_at">Starts (UTC):</label>' in form
    response = post(
        client,
        "/setup/silences/new/",
        {
            "matchers": 'alertname="DiskFull"',
            "service": service.pk,
            "starts_at": "2030-01-01T10:00",
            "ends_at": "2030-01-01T12:30",
            "comment": "disk swap",
        },
    )
    assert response.status_code == 302
    silence = Silence.objects.get()
    assert silence.matchers == [{"label": "alertname", "op": "=", "value": "DiskFull"}]
    assert silence.created_by == bob
    assert silence.starts_at.isoformat() == "2030-01-01T10:00:00+00:00"
    assert silence.ends_at.isoformat() == "2030-01-01T12:30:00+00:00"


def test_silence_rules_are_the_apis(web_bob):
    response = web_bob.post(
        "/setup/silences/new/",
        {"starts_at": "2030-01-01T10:00", "ends_at": "2030-01-01T09:00", "comment": "x"},
    )
    assert "ends_at must be after starts_at" in response.content.decode()
    response = web_bob.post(
        "/setup/silences/new/",
        {"starts_at": "2030-01-01T10:00", "ends_at": "2030-01-01T11:00", "comment": "x"},
    )
    assert (
        "a silence needs matchers, a service (a maintenance window), or both"
        in response.content.decode()
    )
    assert not Silence.objects.exists()


def test_expire_now_ends_an_active_silence(bob):
    silence = make_silence("deploy", timedelta(hours=-1), timedelta(hours=1))
    client = csrf_client(bob)
    response = post(client, f"/setup/silences/{silence.pk}/expire/")
    assert response.status_code == 302
    silence.refresh_from_db()
    assert silence.ends_at <= timezone.now()
    assert not Silence.objects.active(timezone.now()).exists()


def test_observer_cannot_silence(web_charlie):
    silence = make_silence("deploy", timedelta(hours=-1), timedelta(hours=1))
    assert web_charlie.post(f"/setup/silences/{silence.pk}/expire/").status_code == 403
    data = {"matchers": "a=b", "starts_at": "2030-01-01T10:00", "ends_at": "2030-01-01T11:00"}
    assert web_charlie.post("/setup/silences/new/", {**data, "comment": "x"}).status_code == 403
    assert Silence.objects.get().ends_at > timezone.now()
