"""Silences (review M2): the API, the web form and chat apply one set of rules, every silence
created, edited or expired is on the audit log, and alerts a silence held open their incidents
as soon as it ends, however it ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry
from alerts.models import Alert, Kind, Silence
from alerts.silencing import refire_unsilenced
from incidents.models import Incident, Source
from muster.tasks import tick
from tests.alerts.payloads import am_alert, am_batch
from tests.helpers.api import API, assert_error
from warroom.commands.parser import parse
from warroom.execute import run

SILENCES = API + "silences/"
EVERYTHING = [{"label": "nonexistent", "op": "=~", "value": ".*"}]
DB = [{"label": "instance", "op": "=", "value": "db-1"}]


def iso(delta: timedelta) -> str:
    return (timezone.now() + delta).isoformat()


def api_silence(client, **fields):
    payload = {"ends_at": iso(timedelta(hours=1)), "comment": "maintenance", **fields}
    return client.post(SILENCES, payload, format="json")


def web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def web_form(matchers: str, ends: timedelta, **fields) -> dict:
    now = timezone.now()
    return {
        "matchers": matchers,
        "starts_at": now.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + ends).strftime("%Y-%m-%dT%H:%M"),
        "comment": "work",
        **fields,
    }


def chat(text: str, user):
    return run(parse(text, surface="chat"), user=user, source=Source.CHAT)


def silence_audit() -> list[tuple[str, str]]:
    return list(
        AuditEntry.objects.filter(object_type="alerts.silence")
        .order_by("id")
        .values_list("action", "actor__username")
    )


# --- one set of rules -----------------------------------------------------------------------


def test_api_refuses_a_silence_of_every_alert(as_bob, db):
    response = api_silence(as_bob, matchers=EVERYTHING, ends_at="9999-12-31T00:00:00Z")
    assert_error(response, 400, "match every alert")
    assert not Silence.objects.exists()


def test_api_caps_a_responders_silence_at_30_days_but_not_an_admins(as_bob, as_alice, db):
    assert_error(
        api_silence(as_bob, matchers=DB, ends_at=iso(timedelta(days=31))), 400, "at most 30 days"
    )
    assert api_silence(as_bob, matchers=DB, ends_at=iso(timedelta(days=29))).status_code == 201
    assert api_silence(as_alice, matchers=DB, ends_at=iso(timedelta(days=90))).status_code == 201


def test_the_cap_is_a_setting(as_bob, db, settings):
    settings.SILENCE_MAX_DAYS = 2
    response = api_silence(as_bob, matchers=DB, ends_at=iso(timedelta(days=3)))
    assert_error(response, 400, "at most 2 days")


def test_a_maintenance_window_may_match_everything_of_its_service(as_bob, service):
    response = api_silence(as_bob, matchers=EVERYTHING, service=service.pk)
    assert response.status_code == 201


def test_web_form_applies_the_same_rules(bob):
    client = web(bob)
    response = client.post("/setup/silences/new/", web_form('x=~".*"', timedelta(hours=1)))
    assert "match every alert" in response.content.decode()
    response = client.post("/setup/silences/new/", web_form("x=y", timedelta(days=40)))
    assert "at most 30 days" in response.content.decode()
    assert not Silence.objects.exists()


def test_chat_applies_the_same_rules(bob, alice):
    assert "match every alert" in chat('silence x=~".*" for 2h', bob).text
    assert "at most 30 days" in chat("silence job=db for 31d", bob).text
    assert not Silence.objects.exists()
    assert chat("silence job=db for 60d", alice).changed  # an admin may go longer
    assert Silence.objects.get().ends_at - Silence.objects.get().starts_at == timedelta(days=60)


# --- the audit log --------------------------------------------------------------------------


def test_api_create_edit_and_expire_are_audited(as_bob, db):
    created = api_silence(as_bob, matchers=DB).json()
    url = f"{SILENCES}{created['id']}/"
    response = as_bob.patch(url, {"ends_at": iso(timedelta(hours=5))}, format="json")
    assert response.status_code == 200
    assert as_bob.delete(url).status_code == 204
    assert silence_audit() == [("created", "bob"), ("updated", "bob"), ("updated", "bob")]
    edit, expiry = AuditEntry.objects.filter(action="updated").order_by("id")
    assert set(edit.changes) == {"ends_at"}
    assert expiry.summary == f"bob expired silence {created['id']}"


def test_web_create_edit_and_expire_are_audited_once_each(bob):
    client = web(bob)
    assert client.post("/setup/silences/new/", web_form("x=y", timedelta(hours=1))).status_code
    quiet = Silence.objects.get()
    response = client.post(
        f"/setup/silences/{quiet.pk}/", web_form("x=y", timedelta(hours=3), comment="longer")
    )
    assert response.status_code == 302
    assert client.post(f"/setup/silences/{quiet.pk}/expire/").status_code == 302
    assert silence_audit() == [("created", "bob"), ("updated", "bob"), ("updated", "bob")]


def test_chat_silences_are_audited(bob):
    chat("silence job=db for 2h", bob)
    assert silence_audit() == [("created", "bob")]


# --- editing --------------------------------------------------------------------------------


def test_a_silence_is_extended_with_patch_under_the_same_cap(as_bob, db):
    created = api_silence(as_bob, matchers=DB).json()
    url = f"{SILENCES}{created['id']}/"
    later = iso(timedelta(days=2))
    response = as_bob.patch(url, {"ends_at": later, "comment": "longer"}, format="json")
    assert response.status_code == 200
    assert response.json()["comment"] == "longer"
    assert_error(as_bob.patch(url, {"ends_at": iso(timedelta(days=45))}, format="json"), 400)
    assert_error(as_bob.patch(url, {"matchers": EVERYTHING}, format="json"), 400, "every alert")
    assert Silence.objects.get().matchers == DB


def test_an_ended_silence_is_not_edited_and_an_observer_edits_nothing(as_bob, as_charlie, db):
    created = api_silence(as_bob, matchers=DB).json()
    url = f"{SILENCES}{created['id']}/"
    assert as_charlie.patch(url, {"comment": "x"}, format="json").status_code == 403
    as_bob.delete(url)
    assert_error(as_bob.patch(url, {"comment": "x"}, format="json"), 400, "has ended")


# --- when a silence ends, its alerts open their incidents at once ---------------------------


@pytest.fixture
def am_url(make_integration):
    return f"/integrations/alertmanager/{make_integration(Kind.ALERTMANAGER).token}/"


@pytest.fixture
def silenced(post_json, am_url, as_bob):
    created = api_silence(as_bob, matchers=DB).json()
    post_json(am_url, am_batch(am_alert("fp-1", instance="db-1")))
    assert Alert.objects.get().silence_id == created["id"]
    assert not Incident.objects.exists()
    return f"{SILENCES}{created['id']}/"


def test_expiring_a_silence_opens_the_incident_of_a_firing_alert(
    silenced, as_bob, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert as_bob.delete(silenced).status_code == 204
    alert = Alert.objects.get()
    assert alert.incident is not None
    assert Incident.objects.get().title == alert.summary


def test_narrowing_a_silence_opens_the_incidents_it_no_longer_covers(
    silenced, as_bob, django_capture_on_commit_callbacks
):
    other = [{"label": "instance", "op": "=", "value": "db-2"}]
    with django_capture_on_commit_callbacks(execute=True):
        assert as_bob.patch(silenced, {"matchers": other}, format="json").status_code == 200
    assert Alert.objects.get().incident is not None


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(timezone.now(), tick=False)


def test_a_silence_reaching_its_end_opens_the_incident_at_the_next_tick(
    frozen, silenced, time_machine
):
    time_machine.shift(timedelta(minutes=30))
    refire_unsilenced()
    assert not Incident.objects.exists()
    time_machine.shift(timedelta(minutes=31))
    tick()
    assert Alert.objects.get().incident is not None


def test_an_alert_still_covered_by_another_silence_stays_silent(
    silenced, as_bob, django_capture_on_commit_callbacks
):
    second = api_silence(as_bob, matchers=DB).json()
    with django_capture_on_commit_callbacks(execute=True):
        as_bob.delete(silenced)
    alert = Alert.objects.get()
    assert (alert.incident, alert.silence_id) == (None, second["id"])
    assert refire_unsilenced() == 0


# --- chat: unsilence ------------------------------------------------------------------------


def test_unsilence_in_chat_expires_the_silence_audited_and_refires(
    silenced, bob, django_capture_on_commit_callbacks
):
    quiet = Silence.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        reply = chat(f"unsilence {quiet.pk}", bob)
    assert reply.changed and reply.text.startswith(f"Expired silence {quiet.pk};")
    quiet.refresh_from_db()
    assert quiet.ends_at <= timezone.now()
    assert silence_audit()[-1] == ("updated", "bob")
    assert Alert.objects.get().incident is not None
    assert chat(f"unsilence #{quiet.pk}", bob).text == f"Silence {quiet.pk} has already ended."
    assert chat("unsilence 999999", bob).text == "There is no silence 999999."


def test_an_observer_cannot_unsilence(silenced, charlie):
    quiet = Silence.objects.get()
    assert not chat(f"unsilence {quiet.pk}", charlie).changed
    quiet.refresh_from_db()
    assert quiet.ends_at > timezone.now()


def test_the_web_edit_page_shows_the_silence_and_refuses_observers_and_ended_ones(bob, charlie):
    chat("silence job=db for 2h", bob)
    quiet = Silence.objects.get()
    page = web(bob).get(f"/setup/silences/{quiet.pk}/").content.decode()
    assert f"Edit silence {quiet.pk}" in page and 'value="job=&quot;db&quot;"' in page
    assert (
        f'href="/setup/silences/{quiet.pk}/"' in web(bob).get("/setup/silences/").content.decode()
    )
    form = web_form('job="db"', timedelta(hours=3))
    assert web(charlie).post(f"/setup/silences/{quiet.pk}/", form).status_code == 403
    web(bob).post(f"/setup/silences/{quiet.pk}/expire/")
    assert web(bob).post(f"/setup/silences/{quiet.pk}/", form).status_code == 302
    quiet.refresh_from_db()
    assert quiet.ends_at <= timezone.now()  # an ended silence is not brought back
