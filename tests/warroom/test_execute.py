"""Running parsed commands against the database: the verbs, roles, context and replies."""

from __future__ import annotations

import pytest

from incidents import services
from incidents.models import EntryKind, Source, Status
from oncall import escalation, messages
from tests.oncall.builders import make_policy, reachable
from warroom.commands.parser import parse
from warroom.commands.specs import Command
from warroom.execute import needed_role, run
from warroom.replies import Reply


def command(text: str, surface: str = "sms") -> Command:
    parsed = parse(text, surface=surface)
    assert isinstance(parsed, Command), parsed
    return parsed


def last_entry(incident):
    return incident.timeline.order_by("-id").first()


@pytest.mark.parametrize(
    ("text", "status", "kind", "reply"),
    [
        ("ack {n}", Status.ACKNOWLEDGED, EntryKind.ACKNOWLEDGED, "Acknowledged #{n}: Disk full"),
        ("4 {n}", Status.ACKNOWLEDGED, EntryKind.ACKNOWLEDGED, "Acknowledged #{n}: Disk full"),
        ("resolve #{n}", Status.RESOLVED, EntryKind.RESOLVED, "Resolved #{n}: Disk full"),
        ("6 incident {n}", Status.RESOLVED, EntryKind.RESOLVED, "Resolved #{n}: Disk full"),
    ],
)
@pytest.mark.parametrize("source", [Source.SMS, Source.VOICE])
def test_legal_actions_change_state_and_record_the_surface(
    open_incident, bob, text, status, kind, reply, source
):
    incident = open_incident()
    n = incident.number
    result = run(command(text.format(n=n)), user=bob, source=source)
    assert result == Reply(f"{reply.format(n=n)} on db-1", changed=True, incident=n)
    incident.refresh_from_db()
    assert incident.status == status
    entry = last_entry(incident)
    assert (entry.kind, entry.actor, entry.source) == (kind, bob, source)
    assert entry.message.endswith(f"by bob via {Source(source).label}")


@pytest.mark.parametrize("source", [Source.SMS, Source.VOICE, Source.CHAT])
def test_escalate_says_whom_it_paged_and_records_the_surface(open_incident, bob, alice, source):

    incident = open_incident()
    reachable(bob)
    reachable(alice)
    make_policy("db", {"users": [bob]}, {"users": [alice]}, service=incident.service)
    escalation.follow(incident.timeline.get(kind=EntryKind.OPENED).pk)  # level 1: bob
    result = run(command(f"esc {incident.number}", "chat"), user=bob, source=source)
    n = incident.number
    if source == Source.CHAT:
        expected = (
            f"Escalated [#{n}](/incidents/{n}/): Disk full on db\\-1. Level 2: paging alice\\."
        )
    else:
        expected = f"Escalated #{n}. Level 2: paging alice. Disk full on db-1"
    assert result == Reply(expected, changed=True, incident=n)
    entry = incident.timeline.get(kind=EntryKind.ESCALATED)
    assert (entry.actor, entry.source) == (bob, source)


def test_escalate_to_a_level_it_lacks_says_which_there_are(open_incident, bob):

    incident = open_incident()
    make_policy("db", {"users": [bob]}, service=incident.service)
    reply = run(command(f"escalate {incident.number} to level 3"), user=bob, source=Source.SMS)
    assert reply.text == "Escalation policy db has 1 level; choose 1 to 1, not 3."
    assert not reply.changed


def test_resolve_keeps_the_note(open_incident, bob):
    incident = open_incident()
    run(command(f"resolve {incident.number} cleared /var/log"), user=bob, source=Source.SMS)
    entry = last_entry(incident)
    assert entry.message == "Resolved by bob via SMS: cleared /var/log"
    assert entry.data == {"note": "cleared /var/log"}


def test_observer_cannot_ack_and_nothing_changes(open_incident, charlie):
    incident = open_incident()
    reply = run(command(f"ack {incident.number}"), user=charlie, source=Source.SMS)
    assert reply == Reply(
        "This needs the responder role; charlie is observer.", incident=incident.number
    )
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED
    assert list(incident.timeline.values_list("kind", flat=True)) == [EntryKind.OPENED]


def test_admin_may_act(open_incident, alice):
    incident = open_incident()
    assert run(command(f"ack {incident.number}"), user=alice, source=Source.SMS).changed


def test_illegal_transition_replies_with_the_verbs_reason(open_incident, bob, alice):
    incident = open_incident()
    services.acknowledge_incident(incident, by=alice, source=Source.WEB)
    reply = run(command(f"ack {incident.number}"), user=bob, source=Source.SMS)
    assert reply == Reply(
        f"Incident #{incident.number} is already acknowledged.", incident=incident.number
    )
    services.resolve_incident(incident, by=alice, source=Source.WEB)
    reply = run(command(f"resolve {incident.number}"), user=bob, source=Source.SMS)
    assert reply.text == f"Incident #{incident.number} is resolved; it cannot be resolved again."
    assert not reply.changed


def test_unknown_incident_says_so(db, bob):
    assert run(command("ack 99999"), user=bob, source=Source.SMS) == Reply(
        "There is no incident #99999.", incident=99999
    )


def test_without_a_number_the_context_incident_is_meant(open_incident, bob):
    paged, in_room = open_incident("paged"), open_incident("room")
    reply = run(command("ack", "chat"), user=bob, source=Source.CHAT, incident=in_room)
    assert reply.incident == in_room.number
    in_room.refresh_from_db()
    paged.refresh_from_db()
    assert (in_room.status, paged.status) == (Status.ACKNOWLEDGED, Status.TRIGGERED)


def test_a_number_wins_over_the_context(open_incident, bob):
    named, in_room = open_incident("named"), open_incident("room")
    reply = run(command(f"ack {named.number}", "chat"), user=bob, source="chat", incident=in_room)
    assert reply.incident == named.number


def test_by_phone_without_a_number_means_the_latest_open_page(open_incident, page, bob, alice):
    older, latest, closed = open_incident("older"), open_incident("latest"), open_incident("x")
    page(older, bob)
    page(latest, bob)
    page(closed, bob)
    page(older, alice)  # someone else's page does not count
    services.resolve_incident(closed, by=alice, source=Source.WEB)
    reply = run(command("4"), user=bob, source=Source.SMS)
    assert reply == Reply(f"Acknowledged #{latest.number}: latest", True, latest.number)


def test_by_phone_with_no_open_page_asks_which_incident(open_incident, page, bob):
    incident = open_incident()
    page(incident, bob)
    services.resolve_incident(incident, by=bob, source=Source.WEB)
    reply = run(command("ack"), user=bob, source=Source.SMS)
    assert reply == Reply("Which incident? Add its number, e.g. ack 1042")


def test_in_chat_without_context_asks_which_incident(open_incident, page, bob):
    page(open_incident(), bob)  # pages are the phone's context, not chat's
    reply = run(command("resolve", "chat"), user=bob, source=Source.CHAT)
    assert reply.text == "Which incident? Add its number, e.g. resolve 1042 cleared /var/log"


def test_long_titles_are_cut_to_fit_an_sms(open_incident, bob):
    incident = open_incident("x" * 500)
    reply = run(command(f"ack {incident.number}"), user=bob, source=Source.SMS)
    assert len(reply.text) == 160 and reply.text.endswith("...")


def test_a_title_outside_gsm7_is_cut_to_one_ucs2_segment(open_incident, bob):
    # One emoji makes the whole SMS UCS-2: one segment holds 70 UTF-16 units, not 160.
    incident = open_incident("Disk full on db-1 🔥 " + "y" * 200)
    reply = run(command(f"ack {incident.number}"), user=bob, source=Source.SMS)
    assert reply.text.startswith(f"Acknowledged #{incident.number}: Disk full on db-1 🔥")
    assert messages.segments(reply.text) == 1 and reply.text.endswith("...")


def test_a_reply_that_fits_is_left_as_it_is(open_incident, bob):
    incident = open_incident("Disk full on db-1")
    reply = run(command(f"ack {incident.number}"), user=bob, source=Source.SMS)
    assert reply.text == f"Acknowledged #{incident.number}: Disk full on db-1"


# --- ack all ---------------------------------------------------------------------------------


def test_ack_all_acknowledges_every_triggered_incident_paged_to_the_person(
    open_incident, page, bob, alice
):
    first, second, acked, others = (open_incident(str(i)) for i in range(4))
    for incident in (first, second, acked):
        page(incident, bob)
        page(incident, bob, channel="voice")  # two pages, one acknowledgement
    page(others, alice)
    services.acknowledge_incident(acked, by=alice, source=Source.WEB)
    reply = run(command("ack all"), user=bob, source=Source.SMS)
    assert reply == Reply(
        f"Acknowledged 2 incidents: #{first.number}, #{second.number}", changed=True
    )
    for incident in (first, second, others):
        incident.refresh_from_db()
    assert [first.status, second.status, others.status] == [
        Status.ACKNOWLEDGED,
        Status.ACKNOWLEDGED,
        Status.TRIGGERED,
    ]
    assert last_entry(first).source == Source.SMS
    assert last_entry(acked).actor == alice


def test_ack_all_with_one_incident(open_incident, page, bob):
    incident = open_incident()
    page(incident, bob)
    reply = run(command("ack all"), user=bob, source=Source.SMS)
    assert reply == Reply(f"Acknowledged #{incident.number}.", True, incident.number)


def test_ack_all_with_nothing_paged_says_so(open_incident, page, bob, alice):
    page(open_incident(), alice)
    reply = run(command("ack all"), user=bob, source=Source.SMS)
    assert reply == Reply("No triggered incidents are paged to you.")


def test_ack_all_lists_a_few_numbers_and_counts_the_rest(open_incident, page, bob):
    for i in range(30):
        page(open_incident(str(i)), bob)
    reply = run(command("ack all"), user=bob, source=Source.SMS)
    assert reply.changed and len(reply.text) <= 160
    assert reply.text.startswith("Acknowledged 30 incidents: #1000, #1001")
    assert reply.text.endswith("more")


def test_observer_cannot_ack_all(open_incident, page, charlie):
    incident = open_incident()
    page(incident, charlie)
    reply = run(command("ack all"), user=charlie, source=Source.SMS)
    assert reply == Reply("This needs the responder role; charlie is observer.")
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


# --- help and the rest -----------------------------------------------------------------------


def test_help_answers_for_the_surface(db, bob, charlie):
    assert run(command("help"), user=bob, source=Source.SMS).text.startswith("Commands: 4 or ack")
    reply = run(command("help ack", "chat"), user=charlie, source=Source.CHAT)
    assert reply.text.startswith("ack (N): acknowledge an incident")
    assert not reply.changed


def test_a_command_this_runner_cannot_do_says_so(db, bob):
    assert run(command("STOP"), user=bob, source=Source.SMS) == Reply('"stop" does not work here.')


# --- roles, phone limits and the runbook commands --------------------------------------------


def test_a_refusal_names_the_rooms_incident(open_incident, charlie):
    incident = open_incident()
    reply = run(command("esc", "chat"), user=charlie, source=Source.CHAT, incident=incident)
    assert reply == Reply(
        "This needs the responder role; charlie is observer.", incident=incident.number
    )


def test_phone_replies_are_cut_to_one_sms(open_incident, bob):
    for i in range(40):
        open_incident(f"incident {i}")
    reply = run(Command("incidents"), user=bob, source=Source.SMS)
    assert len(reply.text) == 160 and reply.text.startswith("40 open: #")
    assert reply.text.endswith("...")


@pytest.mark.parametrize(
    ("text", "needed"),
    [
        ("run", "observer"),  # lists the runbook's actions
        ("run restart-db", "responder"),
        ("run restart-db confirm", "responder"),
        ("runbook", "observer"),
        ("graph", "observer"),
        ("silence job=db for 1h", "responder"),
        ("subscribe", "observer"),
    ],
)
def test_the_role_each_command_needs(text, needed):
    assert needed_role(command(text, "chat")) == needed


def test_runbook_commands_look_up_a_named_incident_first(db, charlie):
    for text in ("runbook #99999", "graph incident 99999"):
        reply = run(command(text, "chat"), user=charlie, source=Source.CHAT)
        assert reply == Reply("There is no incident #99999.", incident=99999)


def test_observers_may_read_runbooks_and_graphs(open_incident, charlie):
    incident = open_incident()
    for text in ("runbook", "graph", "run"):
        reply = run(command(text, "chat"), user=charlie, source=Source.CHAT, incident=incident)
        assert "needs the responder role" not in reply.text
        assert not reply.changed
