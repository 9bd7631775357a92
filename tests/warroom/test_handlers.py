"""The chat commands against the database: each one's effect, reply, refusals, and that an error
changes nothing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import User
from alerts.models import Alert, AlertStatus, Kind, Silence
from core import pools
from incidents import services
from incidents.models import EntryKind, Incident, Service, Source, Status
from oncall.models import NotificationRule, Page
from tests.alerts.payloads import am_alert, am_batch
from tests.helpers.celery_tasks import named, sent_tasks
from tests.helpers.ingest import results_of
from tests.helpers.system import wait_for
from tests.oncall.builders import add_layer, make_person, make_policy, make_schedule, verified_phone
from warroom import services as rooms
from warroom import status_updates
from warroom.commands.parser import parse
from warroom.commands.specs import Command
from warroom.execute import run
from warroom.models import Message, MessageKind, Participant, Subscription
from warroom.replies import Reply
from warroom.status_updates import deliver_status_update
from warroom.surfaces.chat import say
from warroom.tasks import mail_status_update

CHAT = Source.CHAT


def command(text: str) -> Command:
    parsed = parse(text, surface="chat")
    assert isinstance(parsed, Command), parsed
    return parsed


def chat(text: str, user: User, incident: Incident | None = None) -> Reply:
    """Run `text` as `user` typed it in chat; `incident`: the room's incident."""
    return run(command(text), user=user, source=CHAT, incident=incident)


def kinds(incident: Incident) -> list[str]:
    return list(incident.timeline.order_by("id").values_list("kind", flat=True))


def last_entry(incident: Incident):
    return incident.timeline.order_by("-id").first()


def link(incident: Incident) -> str:
    return f"[#{incident.number}](/incidents/{incident.number}/)"


@pytest.fixture
def incident(open_incident) -> Incident:
    return open_incident()


def reachable(user: User, urgency: str = "high") -> User:
    """Give `user` a verified phone and a rule to use it, so paging reaches them."""
    method = verified_phone(user, f"+1415555{user.pk:04d}")
    NotificationRule.objects.create(
        user=user, urgency=urgency, delay_minutes=0, contact_method=method
    )
    return user


# --- permissions -----------------------------------------------------------------------------

RESPONDER_ONLY = [
    "ack",
    "resolve",
    "escalate",
    "assign @bob",
    "page @bob",
    "status all good",
    "note looking",
    "sev 2",
    "silence job=db for 2h",
    "run restart-db confirm",
]


@pytest.mark.parametrize("text", RESPONDER_ONLY)
def test_observers_cannot_change_anything(incident, bob, charlie, text):
    reply = chat(text, charlie, incident)
    assert reply == Reply(
        "This needs the responder role; charlie is observer.", incident=incident.number
    )
    incident.refresh_from_db()
    assert (incident.status, incident.severity, incident.assignee) == (Status.TRIGGERED, 1, None)
    assert kinds(incident) == [EntryKind.OPENED]
    assert not Silence.objects.exists()
    assert not Page.objects.exists()


@pytest.mark.parametrize("text", ["help", "help sev", "oncall", "incidents", "subscribe"])
def test_observers_may_ask_and_subscribe(incident, charlie, text):
    reply = chat(text, charlie, incident)
    assert "needs the responder role" not in reply.text


def test_a_deactivated_person_can_do_nothing(incident, bob):
    bob.is_active = False
    bob.save()
    assert chat("incidents", bob, incident).text == "bob is deactivated."
    assert chat("ack", bob, incident).text == "bob is deactivated."


def test_without_an_incident_the_command_asks_for_one(db, bob):
    assert chat("assign @bob", bob).text == (
        "Which incident? Add its number, e.g. assign #1042 @bob"
    )
    assert chat("sev 2", bob).text == "Which incident? Add its number, e.g. sev #1042 2"
    assert chat("subscribe", bob).text == (
        "Which incident? Add its number, e.g. subscribe #1042 email"
    )


def test_an_unknown_incident_is_named(db, bob):
    assert chat("note #99999 hello", bob) == Reply("There is no incident #99999.", incident=99999)


def test_a_named_incident_wins_over_the_room(open_incident, bob):
    named, in_room = open_incident("named"), open_incident("room")
    reply = chat(f"note #{named.number} over there", bob, in_room)
    assert reply.incident == named.number
    assert kinds(named)[-1] == EntryKind.NOTE
    assert kinds(in_room) == [EntryKind.OPENED]


# --- the ack family in chat ------------------------------------------------------------------


def test_chat_replies_link_the_incident(incident, bob):
    reply = chat("ack", bob, incident)
    assert reply == Reply(
        f"Acknowledged {link(incident)}: Disk full on db\\-1",
        changed=True,
        incident=incident.number,
    )


def test_chat_ack_all_links_every_incident(open_incident, page, bob):
    first, second = open_incident("one"), open_incident("two")
    page(first, bob)
    page(second, bob)
    reply = chat("ack all", bob)
    assert reply == Reply(f"Acknowledged 2 incidents: {link(first)}, {link(second)}", True)


# --- assign ----------------------------------------------------------------------------------


def test_assign_makes_someone_the_assignee(incident, alice, bob):
    reply = chat("assign @alice", bob, incident)
    assert reply == Reply(f"Assigned {link(incident)} to **alice**.", True, incident.number)
    incident.refresh_from_db()
    assert incident.assignee == alice
    entry = last_entry(incident)
    assert (entry.kind, entry.actor, entry.source) == (EntryKind.REASSIGNED, bob, CHAT)
    assert entry.message == "Reassigned to alice by bob via chat"


def test_assign_me_and_names_in_any_case(open_incident, alice, bob):
    mine, hers = open_incident("mine"), open_incident("hers")
    assert chat("assign me", bob, mine).changed
    assert chat(f"assign #{hers.number} to ALICE", bob).changed
    mine.refresh_from_db()
    hers.refresh_from_db()
    assert (mine.assignee, hers.assignee) == (bob, alice)


def test_assigning_an_acknowledged_incident_triggers_it_again(incident, alice, bob):
    services.acknowledge_incident(incident, by=bob, source=Source.WEB)
    reply = chat("assign @alice", bob, incident)
    assert reply.text.endswith("It is triggered again, so escalation pages them.")
    incident.refresh_from_db()
    assert (incident.status, incident.assignee) == (Status.TRIGGERED, alice)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("assign @nobody", "There is no active user called @nobody."),
        ("assign @charlie", "charlie is an observer and cannot act on incidents."),
        ("assign @dora", "There is no active user called @dora."),  # deactivated
    ],
)
def test_assign_refuses_whom_it_cannot_assign(incident, bob, charlie, text, says):
    make_person("dora", is_active=False)
    assert chat(text, bob, incident) == Reply(says, incident=incident.number)
    incident.refresh_from_db()
    assert incident.assignee is None
    assert kinds(incident) == [EntryKind.OPENED]


def test_assigning_the_assignee_again_changes_nothing(incident, bob):
    chat("assign me", bob, incident)
    reply = chat("assign @bob", bob, incident)
    assert reply == Reply(f"{link(incident)} is already assigned to bob.", incident=incident.number)
    assert kinds(incident).count(EntryKind.REASSIGNED) == 1


def test_a_resolved_incident_cannot_be_assigned(incident, alice, bob):
    services.resolve_incident(incident, by=bob, source=Source.WEB)
    reply = chat("assign @alice", bob, incident)
    assert reply.text == f"Incident #{incident.number} is resolved; it cannot be reassigned."
    assert not reply.changed


# --- page ------------------------------------------------------------------------------------


def test_page_a_person(incident, alice, bob):
    reachable(alice)
    reply = chat("page @alice", bob, incident)
    assert reply == Reply(
        f"Paging **alice** (console) about {link(incident)}.", True, incident.number
    )
    pages = list(Page.objects.filter(incident=incident))
    assert [(p.person, p.channel, p.manual) for p in pages] == [(alice, "console", True)]
    entry = last_entry(incident)
    assert (entry.kind, entry.actor, entry.source) == (EntryKind.PAGE, bob, CHAT)
    assert entry.message == "bob paged alice"


def test_page_whoever_is_on_call_on_a_schedule(incident, alice, bob):
    reachable(alice)
    schedule = make_schedule("DBA primary")
    add_layer(schedule, [alice, bob], start=timezone.now() - timedelta(hours=1))
    for text in ("page DBA primary", "page dba"):  # the name in any case, or a unique part
        reply = chat(text, bob, incident)
        assert reply.text == (
            f"Paging **alice** (console) (on call for DBA primary) about {link(incident)}."
        )
    assert Page.objects.filter(incident=incident, person=alice).count() == 2
    assert not Page.objects.filter(person=bob).exists()


def test_page_a_person_by_bare_name(incident, alice, bob):
    reachable(alice)
    assert chat("page alice", bob, incident).changed


def test_page_prefers_a_username_to_part_of_a_schedules_name(incident, bob):
    al = reachable(make_person("al"))
    make_schedule("Global")
    reply = chat("page al", bob, incident)
    assert reply.text.startswith("Paging **al** (console) about")
    assert list(Page.objects.values_list("person", flat=True)) == [al.pk]


def test_page_someone_unreachable_says_so(incident, alice, bob):
    reply = chat("page @alice", bob, incident)
    assert reply == Reply(
        "alice cannot be paged: no verified contact method for this urgency.",
        incident=incident.number,
    )
    assert not Page.objects.exists()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("page @nobody", "There is no active user called @nobody."),
        ("page night shift", 'There is no schedule or person called "night shift".'),
        ("page empty", "Nobody is on call for empty now."),
        ("page db", "Which schedule: db primary, db secondary?"),
    ],
)
def test_page_refuses_what_it_cannot_find(incident, bob, text, says):
    make_schedule("empty")
    make_schedule("db primary")
    make_schedule("db secondary")
    assert chat(text, bob, incident) == Reply(says, incident=incident.number)
    assert kinds(incident) == [EntryKind.OPENED]
    assert not Page.objects.exists()


def test_nobody_is_paged_for_a_resolved_incident(incident, alice, bob):
    reachable(alice)
    services.resolve_incident(incident, by=bob, source=Source.WEB)
    reply = chat("page @alice", bob, incident)
    assert reply.text == f"Incident #{incident.number} is resolved; nobody is paged for it."
    assert not Page.objects.exists()


# --- oncall ----------------------------------------------------------------------------------


@pytest.fixture
def rota(alice, bob):
    """primary: alice now (a daily rotation that began an hour ago), bob next."""
    schedule = make_schedule("primary")
    add_layer(schedule, [alice, bob], start=timezone.now() - timedelta(hours=1), rotation="daily")
    return schedule


def test_oncall_lists_every_schedule(rota, charlie):
    make_schedule("spare")
    reply = chat("oncall", charlie)
    lines = reply.text.splitlines()
    assert lines[:2] == ["| Schedule | On call now | Until | Next |", "| --- | --- | --- | --- |"]
    handover = rota.layers.get().start + timedelta(days=1)
    when = f"{handover:%a %d %b %H:%M} UTC"
    assert lines[2] == f"| primary | alice | {when} | bob from {when} |"
    assert lines[3] == "| spare | nobody | - | nobody |"
    assert not reply.changed


def test_oncall_for_a_schedule(rota, charlie):
    text = chat("oncall for Primary", charlie).text
    assert "| primary | alice |" in text and "spare" not in text


def test_oncall_for_a_service_says_who_it_pages_first(rota, service, alice, charlie):
    make_policy("checkout policy", {"schedules": [rota]}, service=service)
    reply = chat("oncall checkout", charlie)
    first, _, *table = reply.text.splitlines()
    assert first == "**checkout** pages **alice** first (policy checkout policy)."
    assert table[2].startswith("| primary | alice |")


def test_oncall_in_a_room_means_its_service(rota, service, incident, charlie):
    make_policy("checkout policy", {"schedules": [rota]}, service=service)
    assert chat("oncall", charlie, incident).text.startswith("**checkout** pages **alice**")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("oncall nowhere", 'There is no schedule or service called "nowhere".'),
        ("oncall checkout", "checkout has no escalation policy, so nobody is paged for it."),
        ("oncall db", "Which one: db primary, db secondary?"),
    ],
)
def test_oncall_says_what_it_cannot_find(service, charlie, text, says):
    make_schedule("db primary")
    make_schedule("db secondary")
    assert chat(text, charlie) == Reply(says)


def test_oncall_without_schedules(db, charlie):
    assert chat("oncall", charlie) == Reply("There are no schedules yet.")


# --- status updates --------------------------------------------------------------------------


@pytest.fixture
def stakeholders(incident, service):
    """carol (email, incident), dave (chat, service), erin (email, both: mailed once),
    frank (deactivated), gina (email but no address)."""
    people = {
        name: make_person(name, role="observer") for name in ["carol", "dave", "erin", "gina"]
    }
    frank = make_person("frank", is_active=False)
    people["gina"].email = ""
    people["gina"].save()
    Subscription.objects.create(user=people["carol"], incident=incident, channel="email")
    Subscription.objects.create(user=people["dave"], service=service, channel="chat")
    Subscription.objects.create(user=people["erin"], incident=incident, channel="email")
    Subscription.objects.create(user=people["erin"], service=service, channel="email")
    Subscription.objects.create(user=frank, incident=incident, channel="email")
    Subscription.objects.create(user=people["gina"], incident=incident, channel="email")
    return people


def mailed_by_a_worker(sent: list) -> None:
    """Run the status-mail tasks the block sent, as a worker would, and wait for the mails."""
    for task in named(sent, status_updates.MAIL_TASK):
        mail_status_update(*task.args)
    mail_threads_idle()


def mail_threads_idle() -> None:
    wait_for(
        lambda: not pools.pending("CHAT_THREADS", "status-mail"),
        timeout=10,
        what="the status mails sent",
    )


def test_status_update_reaches_every_subscriber_once(
    incident, stakeholders, bob, django_capture_on_commit_callbacks
):
    with sent_tasks() as sent, django_capture_on_commit_callbacks(execute=True):
        reply = chat("status Failover done; checkout is back", bob, incident)
    assert not mail.outbox  # a worker mails them: no request waits on the mail server
    mailed_by_a_worker(sent)
    assert reply == Reply(
        f"Status update on {link(incident)} sent to 2 by email and 1 in chat.",
        True,
        incident.number,
    )
    entry = incident.timeline.get(kind=EntryKind.STATUS_UPDATE)
    assert (entry.actor, entry.source) == (bob, CHAT)
    assert entry.message == "Status update by bob via chat: Failover done; checkout is back"
    assert entry.data == {"text": "Failover done; checkout is back"}
    assert sorted(m.to[0] for m in mail.outbox) == ["carol@example.com", "erin@example.com"]
    sent = mail.outbox[0]
    assert sent.subject == f"[Muster] #{incident.number} status update: Disk full on db-1"
    assert sent.body.startswith("Failover done; checkout is back\n\n-- bob, on incident #")
    assert f"/incidents/{incident.number}/" in sent.body
    posted = Message.objects.get(room__incident=incident, data__status_update=True)
    assert posted.author is None and posted.kind == MessageKind.BOT
    assert posted.body == (
        f"**Status update** on {link(incident)} from bob:\n\n"
        "> Failover done; checkout is back\n\ncc @dave"
    )


def test_status_update_without_subscribers_is_recorded(incident, bob):
    reply = chat(f"update #{incident.number} Mitigated.", bob)
    assert reply == Reply(
        f"Status update recorded on {link(incident)}; nobody has subscribed yet.",
        True,
        incident.number,
    )
    assert kinds(incident) == [EntryKind.OPENED, EntryKind.STATUS_UPDATE]
    assert not mail.outbox
    posted = Message.objects.get(data__status_update=True)  # the room always hears it
    assert "> Mitigated." in posted.body
    assert "cc" not in posted.body


def test_deliver_status_update_says_whom_it_reached(incident, stakeholders, bob):
    sent = deliver_status_update(incident, "line one\nline two", by=bob)
    assert (sent.email, sent.chat) == (["carol", "erin"], ["dave"])
    posted = Message.objects.get(data__status_update=True)
    assert "> line one\n> line two" in posted.body


def test_a_status_update_in_an_ad_hoc_room_goes_to_the_incidents_room(incident, stakeholders, bob):
    room = rooms.open_room("coordination", by=bob)
    _, answer = say(room, f"/status #{incident.number} all clear", user=bob)
    assert answer.body.startswith(f"Status update on {link(incident)} sent to")
    assert Message.objects.get(data__status_update=True).room == rooms.incident_room(incident)
    recorded = incident.timeline.get(kind=EntryKind.COMMAND)
    assert recorded.data["command"] == "status" and recorded.data["changed"]


# --- note and severity -----------------------------------------------------------------------


def test_note(incident, bob):
    reply = chat("note db-1 disk is 98% full", bob, incident)
    assert reply == Reply(f"Noted on {link(incident)}.", True, incident.number)
    entry = last_entry(incident)
    assert (entry.kind, entry.message, entry.actor, entry.source) == (
        EntryKind.NOTE,
        "db-1 disk is 98% full",
        bob,
        CHAT,
    )


def test_severity(incident, bob):
    reply = chat("sev 4", bob, incident)
    assert reply == Reply(
        f"{link(incident)} is now severity 4 (low urgency).", True, incident.number
    )
    incident.refresh_from_db()
    assert (incident.severity, incident.urgency) == (4, "low")
    assert last_entry(incident).message == "Severity 1 → 4 by bob via chat"


def test_the_same_severity_again_changes_nothing(incident, bob):
    reply = chat(f"sev #{incident.number} 1", bob)
    assert reply == Reply(
        f"Incident #{incident.number} is already severity 1.", incident=incident.number
    )
    assert kinds(incident) == [EntryKind.OPENED]


# --- silence ---------------------------------------------------------------------------------


def test_silence_creates_a_silence_for_the_duration(incident, bob):
    before = timezone.now()
    reply = chat('silence alertname=DiskFull instance=~"db-.*" for 2h', bob, incident)
    quiet = Silence.objects.get()
    assert quiet.matchers == [
        {"label": "alertname", "op": "=", "value": "DiskFull"},
        {"label": "instance", "op": "=~", "value": "db-.*"},
    ]
    assert quiet.created_by == bob and quiet.service is None
    assert before <= quiet.starts_at <= timezone.now()
    assert quiet.ends_at - quiet.starts_at == timedelta(hours=2)
    assert quiet.comment == f"(from #{incident.number} Disk full on db-1, by bob via chat)"
    assert reply.changed and reply.incident == incident.number
    assert reply.text.startswith('Silenced `alertname="DiskFull"` `instance=~"db-.*"` until ')
    assert reply.text.endswith(f"(silence {quiet.pk}).")


def test_silence_keeps_the_comment_typed(db, bob):
    reply = chat("silence job=db for 30m: DB migration", bob)
    assert Silence.objects.get().comment == "DB migration (by bob via chat)"
    assert reply.incident is None


def test_a_silence_typed_in_chat_silences_arriving_alerts(make_integration, post_json, bob):
    integration = make_integration(Kind.ALERTMANAGER, name="prometheus")
    url = f"/integrations/alertmanager/{integration.token}/"
    chat("silence alertname=DiskFull instance=db-1 for 1h", bob)
    response = post_json(
        url,
        am_batch(
            am_alert("fp-1", alertname="DiskFull", instance="db-1"),
            am_alert("fp-2", alertname="DiskFull", instance="db-2"),
        ),
    )
    actions = {r["fingerprint"]: r["action"] for r in results_of(response)}
    assert actions["fp-1"] == "silenced" and actions["fp-2"] != "silenced"


def test_silence_counts_the_firing_alerts_it_already_matches(make_integration, service, bob):
    integration = make_integration(Kind.ALERTMANAGER, name="prometheus")
    now = timezone.now()
    for n, (status, instance) in enumerate(
        [("firing", "db-1"), ("firing", "db-2"), ("resolved", "db-3"), ("firing", "web-1")]
    ):
        Alert.objects.create(
            integration=integration,
            fingerprint=f"fp-{n}",
            status=status,
            service=service,
            summary="x",
            labels={"alertname": "DiskFull", "instance": instance},
            first_seen=now,
            last_seen=now,
        )
    assert AlertStatus.FIRING == "firing"
    reply = chat('silence instance=~"db-.*" for 1h', bob)
    assert reply.text.endswith("It matches 2 firing alerts; their incidents stay open.")


# --- incidents -------------------------------------------------------------------------------


def test_incidents_is_a_table_of_the_open_ones(open_incident, alice, charlie):
    mild, urgent, done = open_incident("mild | pipe"), open_incident("urgent"), open_incident("x")
    services.set_severity(mild, severity=3, by=alice, source=Source.WEB)
    services.acknowledge_incident(urgent, by=alice, source=Source.WEB)
    services.resolve_incident(done, by=alice, source=Source.WEB)
    reply = chat("incidents", charlie)
    assert reply.text.splitlines() == [
        "| Incident | Sev | Status | Service | Assignee | Title |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {link(urgent)} | 1 | acknowledged | checkout | alice | urgent |",
        f"| {link(mild)} | 3 | triggered | checkout | \\- | mild \\| pipe |",
    ]
    assert not reply.changed


def test_incidents_when_all_is_quiet(db, charlie):
    assert chat("incidents", charlie) == Reply("No open incidents.")


def test_a_long_incident_list_is_cut(open_incident, service, charlie):
    other = Service.objects.create(name="search")
    for i in range(51):
        open_incident(str(i), on=other if i % 2 else service)
    lines = chat("incidents", charlie).text.splitlines()
    assert len(lines) == 2 + 50 + 2
    assert lines[-1] == "50 of 51 open incidents; all: [incidents](/incidents/)."


# --- subscriptions ---------------------------------------------------------------------------


def test_subscribe_in_chat_by_default_and_join_the_room(incident, charlie):
    reply = chat("subscribe", charlie, incident)
    assert reply == Reply(
        f"Subscribed: you get {link(incident)}'s status updates in its room.",
        True,
        incident.number,
    )
    assert Subscription.objects.get().channel == "chat"
    assert Participant.objects.get(user=charlie).room.incident == incident
    again = chat("sub chat", charlie, incident)
    assert again == Reply(
        f"You already get {link(incident)}'s status updates in its room.",
        incident=incident.number,
    )
    assert Subscription.objects.count() == 1


def test_subscribe_by_email(incident, charlie):
    assert chat(f"subscribe #{incident.number} email", charlie).changed
    subscription = Subscription.objects.get()
    assert (subscription.user, subscription.incident, subscription.channel) == (
        charlie,
        incident,
        "email",
    )


def test_subscribe_by_email_needs_an_address(incident, charlie):
    charlie.email = ""
    charlie.save()
    reply = chat("subscribe email", charlie, incident)
    assert reply.text.startswith("You have no email address in Muster")
    assert not Subscription.objects.exists()


def test_unsubscribe(incident, service, charlie):
    chat("subscribe email", charlie, incident)
    chat("subscribe chat", charlie, incident)
    Subscription.objects.create(user=charlie, service=service, channel="email")
    assert chat("unsubscribe chat", charlie, incident).changed
    assert list(
        Subscription.objects.filter(incident=incident).values_list("channel", flat=True)
    ) == ["email"]
    reply = chat("unsubscribe", charlie, incident)
    assert reply == Reply(
        f"Unsubscribed from {link(incident)}. You still get every checkout incident's updates.",
        True,
        incident.number,
    )
    assert chat("unsub", charlie, incident).text.startswith(
        f"You are not subscribed to {link(incident)}."
    )
    assert Subscription.objects.filter(service=service).exists()


def test_a_subscriber_gets_the_next_status_update(
    incident, charlie, bob, django_capture_on_commit_callbacks
):
    chat("subscribe email", charlie, incident)
    with sent_tasks() as sent, django_capture_on_commit_callbacks(execute=True):
        chat("status rolled back", bob, incident)
    mailed_by_a_worker(sent)
    assert [m.to for m in mail.outbox] == [["charlie@example.com"]]
    chat("unsubscribe", charlie, incident)
    with sent_tasks() as sent, django_capture_on_commit_callbacks(execute=True):
        chat("status all clear", bob, incident)
    assert named(sent, status_updates.MAIL_TASK) == []
    assert len(mail.outbox) == 1


# --- help, and through the room --------------------------------------------------------------


def test_chat_help_is_the_table(db, charlie):
    reply = chat("help", charlie)
    assert reply.text.startswith("| Command | What it does | Example |")
    assert "| `silence (matchers) for (duration) (comment)` |" in reply.text


def test_help_by_sms_is_still_one_sms(db, bob):
    reply = run(parse("help", surface="sms"), user=bob, source=Source.SMS)
    assert reply.text.startswith("Commands: 4 or ack (N)") and len(reply.text) <= 160


def test_commands_typed_in_the_room_run_and_land_on_the_timeline(incident, bob, charlie):
    room = rooms.incident_room(incident)
    said, answer = say(room, "/sev 2", user=bob)
    assert (said.kind, answer.kind, answer.reply_to) == (
        MessageKind.COMMAND,
        MessageKind.REPLY,
        said,
    )
    assert answer.body == f"{link(incident)} is now severity 2 (high urgency)."
    said, answer = say(room, "@muster sev 9", user=bob)
    assert answer.body == 'Severity is 1 (most severe) to 5; 9 is not. Try "help".'
    said, answer = say(room, "/note observers cannot", user=charlie)
    assert answer.body == "This needs the responder role; charlie is observer."
    commands = incident.timeline.filter(kind=EntryKind.COMMAND).order_by("id")
    assert [(e.actor, e.data["command"], e.data["changed"]) for e in commands] == [
        (bob, "severity", True),
        (bob, None, False),
        (charlie, "note", False),
    ]
    incident.refresh_from_db()
    assert incident.severity == 2


def test_an_admin_subscribes_a_stakeholder_to_a_service_in_the_admin_and_they_get_updates(
    incident, bob, db
):
    from django.test import Client

    from accounts.models import Role, User

    boss = User.objects.create_superuser("boss", "boss@example.com", "pw", role=Role.ADMIN)
    carol = User.objects.create_user("carol-vp", "carol@example.com", "pw", role=Role.OBSERVER)
    client = Client()
    client.force_login(boss)
    response = client.post(
        "/admin/warroom/subscription/add/",
        {"user": carol.pk, "service": incident.service_id, "channel": "email"},
    )
    assert response.status_code == 302, response.content[:500]

    sent = deliver_status_update(incident, "Failover done.", by=bob)

    assert sent.email == ["carol-vp"]


def test_status_mails_go_on_threads_of_their_own_or_ask_again(
    incident, stakeholders, bob, settings
):
    # A mail server that hangs holds the worker's threads for it (MUSTER_CHAT_THREADS, and as
    # many waiting), none of its task threads: a status update finding them all taken calls
    # it not, and asks again in a moment.
    settings.CHAT_THREADS = 1
    addresses = [("carol", "carol@example.com")]
    release = threading.Event()
    for _ in range(2):  # another update's mails, sent and waiting
        assert pools.submit("CHAT_THREADS", "status-mail", release.wait, 30)
    try:
        with sent_tasks() as sent:
            mail_status_update("subject", "body", addresses, "update-1")
    finally:
        release.set()
    mail_threads_idle()
    assert not mail.outbox
    [again] = named(sent, status_updates.MAIL_TASK)
    assert again.args == ("subject", "body", addresses, "update-1") and again.eta is not None
    mail_status_update(*again.args)  # its threads free now
    mail_threads_idle()
    assert [m.to for m in mail.outbox] == [["carol@example.com"]]
