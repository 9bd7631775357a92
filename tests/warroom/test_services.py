"""Saying and posting in a room: conversation, commands, Markdown made safe, attachments."""

from __future__ import annotations

import re

import pytest

from incidents.models import EntryKind, Source, Status
from tests.warroom.rooms_fixtures import (  # noqa: F401 (fixtures)
    ELF,
    PDF,
    PNG,
    room_fixture,
    upload,
)
from warroom.attachments import AttachmentRefused
from warroom.models import Attachment, Message, MessageKind
from warroom.services import open_room, post
from warroom.surfaces.chat import say


def commands_on(incident):
    return list(incident.timeline.filter(kind=EntryKind.COMMAND).order_by("id"))


# --- conversation and commands -----------------------------------------------------------------


def test_conversation_is_posted_as_chat_and_runs_nothing(room, bob):
    [message] = say(room, "disk is at 99%, looking at **db-1**", user=bob)
    assert (message.kind, message.author, message.room) == (MessageKind.CHAT, bob, room)
    assert message.html == "<p>disk is at 99%, looking at <strong>db-1</strong></p>\n"
    assert commands_on(room.incident) == []
    room.incident.refresh_from_db()
    assert room.incident.status == Status.TRIGGERED


def test_a_command_is_run_as_its_sender_answered_and_recorded_with_its_actor(room, bob):
    incident = room.incident
    said, reply = say(room, "/ack", user=bob)
    assert (said.kind, said.author, said.body) == (MessageKind.COMMAND, bob, "/ack")
    assert (reply.kind, reply.author, reply.reply_to) == (MessageKind.REPLY, None, said)
    assert reply.body.startswith("Acknowledged") and f"#{incident.number}" in reply.body
    incident.refresh_from_db()
    assert (incident.status, incident.acknowledged_by) == (Status.ACKNOWLEDGED, bob)
    [entry] = commands_on(incident)
    assert (entry.actor, entry.source) == (bob, Source.CHAT)
    assert entry.data == {"command": "acknowledge", "changed": True, "room": room.pk}
    assert entry.message.startswith(f"bob in {room.name}: /ack → Acknowledged")


@pytest.mark.parametrize("text", ["@muster ack", "ack incident {n}", "/ack #{n}"])
def test_each_way_of_addressing_the_bot_is_a_command(room, bob, text):
    said, _ = say(room, text.format(n=room.incident.number), user=bob)
    assert said.kind == MessageKind.COMMAND
    room.incident.refresh_from_db()
    assert room.incident.status == Status.ACKNOWLEDGED


def test_an_observers_ack_is_refused_with_a_reply_and_changes_nothing(room, charlie):
    incident = room.incident
    said, reply = say(room, "/ack", user=charlie)
    assert said.kind == MessageKind.COMMAND
    assert reply.body == "This needs the responder role; charlie is observer."
    incident.refresh_from_db()
    assert (incident.status, incident.acknowledged_by) == (Status.TRIGGERED, None)
    assert not incident.timeline.filter(kind=EntryKind.ACKNOWLEDGED).exists()
    [entry] = commands_on(incident)  # the attempt is on the record, unchanged
    assert (entry.actor, entry.data["changed"]) == (charlie, False)


def test_a_mistyped_command_gets_the_closest_one_and_changes_nothing(room, bob):
    said, reply = say(room, "/akc", user=bob)
    assert said.kind == MessageKind.COMMAND
    assert 'Did you mean "ack"?' in reply.body
    room.incident.refresh_from_db()
    assert room.incident.status == Status.TRIGGERED
    [entry] = commands_on(room.incident)
    assert (entry.actor, entry.data) == (bob, {"command": None, "changed": False, "room": room.pk})


def test_ack_incident_n_in_an_ad_hoc_room_acts_on_that_incident(room, bob):
    incident = room.incident
    lobby = open_room("ops lobby", by=bob)
    _, reply = say(lobby, f"ack incident {incident.number}", user=bob)
    assert reply.body.startswith("Acknowledged") and f"#{incident.number}" in reply.body
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    [entry] = commands_on(incident)
    assert entry.data["room"] == lobby.pk


# --- Markdown, rendered and made safe ----------------------------------------------------------


def test_code_blocks_and_tables_render(room, bob):
    text = "```\nrm -rf /tmp/cache\n```\n\n| host | disk |\n|---|---|\n| db-1 | 99% |"
    [message] = say(room, text, user=bob)
    assert "<pre><code>rm -rf /tmp/cache\n</code></pre>" in message.html
    assert "<table>" in message.html
    assert "<td>db-1</td>" in message.html


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(document.cookie)</script>",
        "hi <script>alert(1)</script> there",
        "[click me](javascript:alert(1))",
        "[click me](JaVaScRiPt:alert(1))",
        "<img src=x onerror=alert(1)>",
        "![x](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        "<svg onload=alert(1)>",
        "<iframe src=https://evil.example></iframe>",
    ],
)
def test_scripts_handlers_and_javascript_urls_never_reach_the_html(room, bob, text):
    [message] = say(room, text, user=bob)
    assert message.body == text  # kept as written
    html = message.html.lower()
    assert "<script" not in html
    assert not re.search(r"<[^>]+(href|src)\s*=\s*[\"']?\s*javascript:", html), html
    assert not re.search(r"<[^>]+\son\w+\s*=", html), html  # no event handler attribute
    assert "<img" not in html or "onerror" not in html
    assert "<svg" not in html and "<iframe" not in html


def test_raw_html_is_shown_as_text(room, bob):
    [message] = say(room, "<script>alert(1)</script>", user=bob)
    assert message.html == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"


def test_links_keep_http_and_are_marked_nofollow(room, bob):
    [message] = say(room, "[graph](https://grafana.example/d/db)", user=bob)
    assert 'href="https://grafana.example/d/db"' in message.html
    assert 'rel="noopener noreferrer nofollow"' in message.html


# --- attachments -------------------------------------------------------------------------------


def test_files_of_allowed_types_are_stored_typed_by_their_content(room, bob):
    message = post(
        room,
        "the log and a screenshot",
        author=bob,
        files=[upload("db.log", b"ERROR disk full\n"), upload("screen.txt", PNG)],
    )
    log, screen = message.attachments.order_by("id")
    assert (log.name, log.content_type, log.size) == ("db.log", "text/plain", 16)
    assert log.file.read() == b"ERROR disk full\n"
    # Named .txt, but a PNG: the content decides.
    assert (screen.name, screen.content_type) == ("screen.txt", "image/png")
    [pdf] = post(room, "report", author=bob, files=[upload("r.pdf", PDF)]).attachments.all()
    assert pdf.content_type == "application/pdf"


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>', "svg"),
        ("x.png", b"  <!DOCTYPE html><html><script>alert(1)</script></html>", "text/html"),
        ("x.log", b'<?xml version="1.0"?><svg><script>alert(1)</script></svg>', "svg"),
    ],
)
def test_markup_is_refused_whatever_its_name_and_nothing_is_stored(room, bob, name, content, kind):
    log = upload("ok.log", b"disk full\n")
    with pytest.raises(AttachmentRefused) as refused:
        post(room, "odd", author=bob, files=[log, upload(name, content)])
    assert kind in str(refused.value)
    assert not Attachment.objects.exists()
    assert not Message.objects.filter(body="odd").exists()


def test_a_file_over_the_size_limit_is_refused_naming_the_limit(room, bob, settings):
    settings.WARROOM_ATTACHMENT_MAX_BYTES = 1000
    with pytest.raises(AttachmentRefused) as refused:
        post(room, "big log", author=bob, files=[upload("big.log", b"x" * 1001)])
    assert str(refused.value) == "big.log is 1001 bytes; the limit is 1000 bytes"
    assert not Attachment.objects.exists()


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("tool", ELF, "application/x-executable"),
        ("setup.png", b"MZ\x90\x00" + b"\x00" * 60, "application/x-msdownload"),
        ("blob.bin", b"\x00\x01\x02\xff\xfe" * 50, "application/octet-stream"),
    ],
)
def test_a_file_of_a_refused_type_is_refused_naming_its_type(room, bob, name, content, kind):
    with pytest.raises(AttachmentRefused) as refused:
        post(room, "look", author=bob, files=[upload(name, content)])
    assert str(refused.value).startswith(f"{name} is {kind}; rooms take application/gzip, ")
    assert not Attachment.objects.exists()


def test_a_refused_file_leaves_no_message_when_posted_in_a_transaction(room, bob):
    from django.db import transaction

    before = Message.objects.count()
    with pytest.raises(AttachmentRefused), transaction.atomic():
        post(room, "look", author=bob, files=[upload("tool", ELF)])
    assert Message.objects.count() == before
