"""The `postmortem` chat command: starts the postmortem for a responder, links it for anyone."""

from __future__ import annotations

from incidents.models import EntryKind, Postmortem
from warroom import services as rooms
from warroom.commands.help import help_text
from warroom.commands.parser import parse
from warroom.commands.specs import Command
from warroom.surfaces.chat import say


def test_postmortem_parses_with_its_aliases_and_an_incident():
    assert parse("postmortem", surface="chat") == Command("postmortem")
    assert parse("pm #1042", surface="chat") == Command("postmortem", incident=1042)
    assert parse("post-mortem incident 1042", surface="web") == Command("postmortem", 1042)
    assert help_text("postmortem", surface="chat") == (
        "postmortem (N): start the incident's postmortem and link to it and its exports. "
        "e.g. postmortem. Also: post-mortem, pm."
    )
    assert not isinstance(parse("postmortem", surface="sms"), Command)


def test_a_responder_typing_postmortem_in_the_room_starts_it_and_gets_the_links(open_incident, bob):
    incident = open_incident()
    room = rooms.incident_room(incident)
    n = incident.number
    _, reply = say(room, "/postmortem", user=bob)
    assert reply.body == (
        f"Started the postmortem of [#{n}](/incidents/{n}/): "
        f"[edit it](/incidents/{n}/postmortem/) · export as "
        f"[Markdown](/incidents/{n}/postmortem/export.md), "
        f"[JSON](/incidents/{n}/postmortem/export.json) or "
        f"[a printable page](/incidents/{n}/postmortem/print/)."
    )
    assert Postmortem.objects.get(incident=incident).created_by == bob
    command = incident.timeline.filter(kind=EntryKind.COMMAND).get()
    assert command.data["command"] == "postmortem" and command.data["changed"] is True
    _, again = say(room, "/pm", user=bob)
    assert again.body.startswith(f"The postmortem of [#{n}](/incidents/{n}/): [edit it]")
    assert Postmortem.objects.count() == 1


def test_an_observer_gets_the_link_but_does_not_start_one(open_incident, bob, charlie):
    incident = open_incident()
    room = rooms.incident_room(incident)
    n = incident.number
    _, reply = say(room, "/postmortem", user=charlie)
    assert reply.body == (
        f"[#{n}](/incidents/{n}/) has no postmortem yet; a responder starts one by typing "
        f"`postmortem`. It will be at [its page](/incidents/{n}/postmortem/)."
    )
    assert not Postmortem.objects.exists()
    say(room, "/postmortem", user=bob)
    _, reply = say(room, f"/postmortem #{n}", user=charlie)
    assert reply.body.startswith(f"The postmortem of [#{n}](/incidents/{n}/)")


def test_outside_an_incident_room_postmortem_asks_which_incident(bob):
    room = rooms.open_room("db migration", by=bob)
    _, reply = say(room, "/postmortem", user=bob)
    assert reply.body == "Which incident? Add its number, e.g. postmortem #1042"
    _, reply = say(room, "/postmortem #999999", user=bob)
    assert reply.body == "There is no incident #999999."
