"""The room's plain page, where the link in a page leads: read it, talk, type commands."""

from __future__ import annotations

import pytest
from django.test import Client

from incidents.models import Source, Status
from incidents.opening import open_incident
from oncall.messages import room_url
from warroom.models import Message
from warroom.services import incident_room, post


@pytest.fixture
def incident(service):
    return open_incident(service, title="Disk full on db-1", severity=2, source=Source.ALERT)


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_link_in_a_page_is_the_rooms_page(incident, settings):
    settings.PUBLIC_URL = "https://muster.example.com"
    assert (
        room_url(incident.number) == f"https://muster.example.com/rooms/incident/{incident.number}/"
    )


def test_it_shows_the_history_sanitized(incident, bob):
    room = incident_room(incident)
    post(room, "**bold** <script>alert(1)</script>", author=bob)

    page = browser(bob).get(f"/rooms/incident/{incident.number}/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "<strong>bold</strong>" in text
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;" in text
    assert f"Incident #{incident.number}" in text


def test_a_command_typed_there_acts_and_is_answered(incident, bob):
    client = browser(bob)

    response = client.post(f"/rooms/incident/{incident.number}/", {"body": "/ack"})

    assert response.status_code == 302  # post/redirect/get
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    page = client.get(response["Location"]).content.decode()
    assert "Acknowledged" in page
    assert Message.objects.filter(room__incident=incident, kind="reply").count() == 1


def test_an_observers_ack_is_refused_in_the_reply(incident, charlie):
    browser(charlie).post(f"/rooms/incident/{incident.number}/", {"body": "/ack"})

    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED
    reply = Message.objects.get(room__incident=incident, kind="reply")
    assert "responder role" in reply.body


def test_an_empty_message_is_refused_saying_so(incident, bob):
    response = browser(bob).post(f"/rooms/incident/{incident.number}/", {"body": "  "})
    assert response.status_code == 400
    assert "Type something to say." in response.content.decode()


def test_anonymous_visitors_are_sent_to_sign_in_and_unknown_incidents_are_404(incident, bob):
    anonymous = Client().get(f"/rooms/incident/{incident.number}/")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert browser(bob).get("/rooms/incident/999999/").status_code == 404


def test_posting_needs_the_csrf_token(incident, bob):
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    response = client.post(f"/rooms/incident/{incident.number}/", {"body": "hello"})
    assert response.status_code == 403
    assert not Message.objects.filter(body="hello").exists()
