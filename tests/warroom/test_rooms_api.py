"""The rooms API: rooms, history pages, saying things, attachments, an incident's room."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from incidents.models import EntryKind, Status
from tests.helpers.api import API, assert_error
from tests.warroom.rooms_fixtures import (  # noqa: F401 (fixtures)
    ELF,
    PNG,
    open_incident,
    room_fixture,
    upload,
)
from warroom.markdown import MAX_BODY
from warroom.models import Attachment, Message, Room
from warroom.services import incident_room, open_room, post


def messages_url(room) -> str:
    return f"{API}rooms/{room.pk}/messages/"


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# --- rooms -------------------------------------------------------------------------------------


def test_rooms_are_listed_newest_first_and_filtered_by_incident(as_charlie, service, bob):
    first = incident_room(open_incident(service, "first"))
    lobby = open_room("lobby", by=bob)
    second_incident = open_incident(service, "second")
    second = incident_room(second_incident)

    response = as_charlie.get(API + "rooms/")
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == [second.pk, lobby.pk, first.pk]

    response = as_charlie.get(API + "rooms/", {"incident": second_incident.number})
    [only] = response.json()["results"]
    assert only["id"] == second.pk
    assert only["incident"] == {
        "number": second_incident.number,
        "status": "triggered",
        "severity": 2,
        "title": "second",
        "assignee": None,
    }
    assert as_charlie.get(API + "rooms/", {"incident": 424242}).json()["results"] == []
    assert_error(as_charlie.get(API + "rooms/", {"incident": "x"}), 400, "incident number")


def test_listing_rooms_takes_a_fixed_number_of_queries(
    as_charlie, service, bob, django_assert_max_num_queries
):
    for i in range(6):
        room = incident_room(open_incident(service, f"incident {i}"))
        room.participants.create(user=bob, reason="paged")
    with django_assert_max_num_queries(6):
        response = as_charlie.get(API + "rooms/")
    assert len(response.json()["results"]) == 6


def test_a_room_shows_its_incident_and_participants(as_charlie, room, bob):
    room.participants.create(user=bob, reason="paged")
    response = as_charlie.get(f"{API}rooms/{room.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == room.pk and body["name"] == room.name
    assert body["incident"]["number"] == room.incident.number
    assert body["incident"]["status"] == "triggered"
    assert [(p["user"], p["reason"]) for p in body["participants"]] == [("bob", "paged")]
    assert body["websocket"] == f"/ws/rooms/{room.pk}/"
    assert body["messages"] == f"/api/v1/rooms/{room.pk}/messages/"


def test_an_unknown_room_is_404(as_charlie, db):
    assert_error(as_charlie.get(API + "rooms/424242/"), 404, "There is no room 424242.")
    assert_error(as_charlie.get(API + "rooms/424242/messages/"), 404, "There is no room")


def test_a_responder_opens_an_ad_hoc_room_with_themselves_in_it(as_bob, bob):
    response = as_bob.post(API + "rooms/", {"name": "db migration"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["incident"], body["created_by"]) == ("db migration", None, "bob")
    assert [p["user"] for p in body["participants"]] == ["bob"]
    assert Room.objects.get(pk=body["id"]).created_by == bob


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({}, "name: This field is required."),
        ({"name": ""}, "name: This field may not be blank."),
        ({"name": "x" * 201}, "name: Ensure this field has no more than 200 characters."),
        ({"name": "a\x00b"}, "name: "),
    ],
)
def test_a_room_needs_a_name(as_bob, payload, problem):
    assert_error(as_bob.post(API + "rooms/", payload, format="json"), 400, problem)
    assert not Room.objects.exists()


def test_an_observer_cannot_open_a_room(as_charlie):
    response = as_charlie.post(API + "rooms/", {"name": "mine"}, format="json")
    assert_error(response, 403, "This needs the responder role; you are observer.")


def test_an_incidents_room_is_opened_when_first_asked_for_and_then_the_same(as_charlie, service):
    incident = open_incident(service)
    assert not Room.objects.exists()
    first = as_charlie.get(f"{API}incidents/{incident.number}/room/")
    assert first.status_code == 200
    assert first.json()["incident"]["number"] == incident.number
    again = as_charlie.get(f"{API}incidents/{incident.number}/room/")
    assert again.json()["id"] == first.json()["id"] == Room.objects.get(incident=incident).pk
    assert_error(as_charlie.get(f"{API}incidents/424242/room/"), 404, "no incident #424242")


# --- history -----------------------------------------------------------------------------------


@pytest.fixture
def history(room, bob) -> list[int]:
    """Ten messages in the room; their ids."""
    return [post(room, f"m{i}", author=bob).pk for i in range(10)]


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [m["id"] for m in response.json()["results"]]


def test_history_starts_with_the_latest_and_pages_back_and_forth_in_id_order(
    as_charlie, room, history
):
    latest = as_charlie.get(messages_url(room), {"limit": 4})
    assert ids(latest) == history[-4:]
    assert latest.json()["next"] is None
    older = as_charlie.get(path_of(latest.json()["previous"]))
    assert ids(older) == history[2:6]
    oldest = as_charlie.get(path_of(older.json()["previous"]))
    assert ids(oldest) == history[:2]
    assert oldest.json()["previous"] is None
    newer = as_charlie.get(path_of(oldest.json()["next"]))
    assert ids(newer) == history[2:6]


def test_history_after_an_id_is_what_came_next(as_charlie, room, history):
    page = as_charlie.get(messages_url(room), {"after": history[3], "limit": 3})
    assert ids(page) == history[4:7]
    rest = as_charlie.get(path_of(page.json()["next"]))
    assert ids(rest) == history[7:]
    assert rest.json()["next"] is None
    assert (
        as_charlie.get(path_of(rest.json()["previous"])).json()["results"][-1]["id"] == (history[6])
    )
    between = as_charlie.get(messages_url(room), {"after": history[1], "before": history[5]})
    assert ids(between) == history[2:5]
    assert ids(as_charlie.get(messages_url(room), {"after": history[-1]})) == []


def test_history_shows_messages_as_the_websocket_does(as_charlie, room, bob):
    message = post(room, "the log", author=bob, files=[upload("db.log", b"disk full\n")])
    [shown] = as_charlie.get(messages_url(room)).json()["results"]
    attachment = message.attachments.get()
    assert shown == {
        "id": message.pk,
        "room": room.pk,
        "author": "bob",
        "kind": "chat",
        "body": "the log",
        "html": "<p>the log</p>\n",
        "created_at": message.created_at.isoformat(),
        "reply_to": None,
        "attachments": [
            {
                "id": attachment.pk,
                "name": "db.log",
                "content_type": "text/plain",
                "size": 10,
                "url": f"/api/v1/attachments/{attachment.pk}/",
            }
        ],
        "data": {},
    }


def test_reading_history_takes_a_fixed_number_of_queries(
    as_charlie, room, bob, django_assert_max_num_queries
):
    for i in range(20):
        post(room, f"m{i}", author=bob, files=[upload(f"{i}.log", b"x\n")])
    with django_assert_max_num_queries(8):
        response = as_charlie.get(messages_url(room), {"limit": 20})
    assert len(response.json()["results"]) == 20


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"limit": 0}, "limit: must be between 1 and 500"),
        ({"limit": 501}, "limit: must be between 1 and 500"),
        ({"limit": "ten"}, "limit: must be"),
        ({"after": "abc"}, "after: must be a message id"),
        ({"before": "-1"}, "before: must be a message id"),
        ({"after": "1" * 40}, "after: must be a message id"),
        ({"after": "1\x00"}, "after cannot contain NUL characters"),
    ],
)
def test_bad_history_parameters_are_400(as_charlie, room, params, problem):
    assert_error(as_charlie.get(messages_url(room), params), 400, problem)


# --- saying things -----------------------------------------------------------------------------


def test_anyone_may_talk_and_gets_the_message_back(as_charlie, room, charlie):
    response = as_charlie.post(messages_url(room), {"body": "what can I do?"}, format="json")
    assert response.status_code == 201, response.content
    [message] = response.json()["messages"]
    assert (message["author"], message["kind"], message["body"]) == (
        "charlie",
        "chat",
        "what can I do?",
    )
    assert Message.objects.get(pk=message["id"]).author == charlie


def test_a_command_posted_through_the_api_runs_as_the_poster(as_bob, room, bob):
    response = as_bob.post(messages_url(room), {"body": "/ack"}, format="json")
    assert response.status_code == 201, response.content
    said, reply = response.json()["messages"]
    assert (said["kind"], reply["kind"], reply["reply_to"]) == ("command", "reply", said["id"])
    room.incident.refresh_from_db()
    assert (room.incident.status, room.incident.acknowledged_by) == (Status.ACKNOWLEDGED, bob)
    entry = room.incident.timeline.get(kind=EntryKind.COMMAND)
    assert (entry.actor, entry.source) == (bob, "chat")


def test_an_observers_command_is_refused_by_the_bot_and_changes_nothing(as_charlie, room):
    response = as_charlie.post(messages_url(room), {"body": "/resolve"}, format="json")
    assert response.status_code == 201
    _, reply = response.json()["messages"]
    assert reply["body"] == "This needs the responder role; charlie is observer."
    room.incident.refresh_from_db()
    assert room.incident.status == Status.TRIGGERED


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({}, '"body" must be a string of Markdown.'),
        ({"body": 5}, '"body" must be a string of Markdown.'),
        ({"body": "   "}, "The message is empty."),
        ({"body": "x" * (MAX_BODY + 1)}, f"the limit is {MAX_BODY}"),
        ({"body": "a\x00b"}, "cannot contain NUL characters"),
        (["body"], 'send an object with a "body"'),
    ],
)
def test_a_bad_message_is_400_and_nothing_is_posted(as_bob, room, payload, problem):
    assert_error(as_bob.post(messages_url(room), payload, format="json"), 400, problem)
    assert not Message.objects.filter(room=room).exists()


# --- attachments -------------------------------------------------------------------------------


def test_a_responder_attaches_files_and_anyone_downloads_them(as_bob, as_charlie, room):
    files = [upload("db.log", b"ERROR disk full\n"), upload("screen.png", PNG)]
    response = as_bob.post(
        messages_url(room), {"body": "log and screenshot", "files": files}, format="multipart"
    )
    assert response.status_code == 201, response.content
    [message] = response.json()["messages"]
    log, screen = message["attachments"]
    assert (log["name"], log["content_type"], log["size"]) == ("db.log", "text/plain", 16)
    assert screen["content_type"] == "image/png"

    download = as_charlie.get(log["url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"ERROR disk full\n"
    assert download["Content-Type"] == "text/plain"
    assert download["Content-Disposition"] == 'attachment; filename="db.log"'
    assert download["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download["Content-Security-Policy"]
    image = as_charlie.get(screen["url"], HTTP_ACCEPT="image/avif,image/webp,*/*;q=0.8")
    assert (image.status_code, image["Content-Type"]) == (200, "image/png")


def test_markup_uploaded_is_refused_saying_why(as_bob, room):
    page = b"<html><body><script>alert(document.cookie)</script></body></html>"
    response = as_bob.post(
        messages_url(room), {"files": [upload("x.txt", page)]}, format="multipart"
    )
    assert response.status_code == 400, response.content
    assert "x.txt is text/html" in response.json()["error"]["message"]


def test_a_text_download_is_served_as_an_attachment_never_sniffed(as_bob, as_charlie, room):
    response = as_bob.post(
        messages_url(room), {"files": [upload("db.log", b"disk full\n")]}, format="multipart"
    )
    assert response.status_code == 201, response.content
    [attachment] = response.json()["messages"][0]["attachments"]
    download = as_charlie.get(attachment["url"], HTTP_ACCEPT="*/*")
    assert download["Content-Type"] == "text/plain"
    assert download["Content-Disposition"].startswith("attachment;")
    assert download["X-Content-Type-Options"] == "nosniff"


def test_a_client_that_does_not_take_the_files_type_is_told_about_it(as_charlie, room, bob):
    message = post(room, "log", author=bob, files=[upload("db.log", b"disk full\n")])
    attachment = message.attachments.get()
    url = f"{API}attachments/{attachment.pk}/"
    described = as_charlie.get(url, HTTP_ACCEPT="application/json")
    assert described.json() == {
        "id": attachment.pk,
        "name": "db.log",
        "content_type": "text/plain",
        "size": 10,
        "url": url,
        "message": message.pk,
        "room": room.pk,
    }
    page = as_charlie.get(url, HTTP_ACCEPT="text/html")
    assert page["Content-Type"].startswith("text/html")
    assert b"db.log" in page.content


def test_an_unknown_attachment_is_404(as_charlie, db):
    assert_error(as_charlie.get(API + "attachments/424242/"), 404, "There is no attachment")


def test_an_observer_may_not_attach_files(as_charlie, room):
    response = as_charlie.post(
        messages_url(room), {"body": "x", "files": [upload("a.log", b"a\n")]}, format="multipart"
    )
    assert_error(response, 403, "Attachments need the responder role; you are observer.")
    assert not Message.objects.filter(room=room).exists()


def test_a_file_over_the_limit_is_400_naming_the_limit_and_posts_nothing(as_bob, room, settings):
    settings.WARROOM_ATTACHMENT_MAX_BYTES = 100
    files = [upload("ok.log", b"fine\n"), upload("big.log", b"x" * 101)]
    response = as_bob.post(messages_url(room), {"body": "logs", "files": files}, format="multipart")
    assert_error(response, 400, "files: big.log is 101 bytes; the limit is 100 bytes")
    assert not Message.objects.filter(room=room).exists()
    assert not Attachment.objects.exists()


def test_a_file_of_a_refused_type_is_400_naming_its_type(as_bob, room):
    response = as_bob.post(
        messages_url(room), {"body": "tool", "files": [upload("tool", ELF)]}, format="multipart"
    )
    assert_error(response, 400, "files: tool is application/x-executable; rooms take")
    assert not Message.objects.filter(room=room).exists()


def test_too_many_files_or_a_command_with_files_is_400(as_bob, room):
    files = [upload(f"{i}.log", b"x\n") for i in range(11)]
    response = as_bob.post(messages_url(room), {"files": files}, format="multipart")
    assert_error(response, 400, "files: at most 10 files in one message")
    response = as_bob.post(
        messages_url(room), {"body": "/ack", "files": [upload("a.log", b"x\n")]}, format="multipart"
    )
    assert_error(response, 400, "body: send a command without attachments")
    assert not Message.objects.filter(room=room).exists()
    room.incident.refresh_from_db()
    assert room.incident.status == Status.TRIGGERED
