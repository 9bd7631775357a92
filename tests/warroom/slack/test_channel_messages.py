"""What people write in an incident's own Slack channel: conversation mirrored into the room and
onto the timeline by its author, `<verb> incident <N>` run as them and answered in the thread,
everything else (other channels, bots, edits) left alone."""

from __future__ import annotations

import pytest

from accounts.models import User
from incidents.models import EntryKind, Source, Status
from tests.fakes.slack import BOT_ID, BOT_USER_ID
from tests.helpers.slack import INCIDENT_CHANNEL, mention_event, message_event
from tests.warroom.slack.conftest import sent_names
from warroom.models import ChatChannel, ChatChannelState, Message, MessageKind
from warroom.slack.mrkdwn import from_slack
from warroom.slack.tasks import MENTION_TASK, MESSAGE_TASK


@pytest.fixture
def incident(open_incident, fake_slack):
    """An open incident whose own Slack channel is ready."""
    opened = open_incident()
    ChatChannel.objects.update_or_create(
        platform="slack",
        incident=opened,
        defaults={
            "state": ChatChannelState.READY,
            "name": f"inc-{opened.number}-disk-full-on-db-1",
            "channel_id": INCIDENT_CHANNEL,
        },
    )
    return opened


def said(incident) -> list[Message]:
    return list(
        Message.objects.filter(room__incident=incident, kind__in=(MessageKind.CHAT, "bot"))
        .exclude(author__isnull=True, data__via__isnull=True)
        .order_by("id")
    )


def test_conversation_appears_in_the_room_and_on_the_timeline(
    event, fake_slack, bob_on_slack, incident
):
    payload = message_event(
        "rolled back &lt;db-1&gt; &amp; restarted, see <https://grafana.example.com/d/1|the graph>"
    )
    response, sent = event(payload)
    assert response.status_code == 200
    assert sent_names(sent) == [MESSAGE_TASK]
    sent.run()
    [message] = said(incident)
    text = "rolled back <db-1> & restarted, see [the graph](https://grafana.example.com/d/1)"
    assert (message.author.username, message.kind, message.body) == ("bob", MessageKind.CHAT, text)
    assert message.data == {"via": "slack", "slack_user": "U0BOB", "ts": payload["event"]["ts"]}
    entry = incident.timeline.get(kind=EntryKind.CHAT_MESSAGE)
    assert (entry.actor.username, entry.source, entry.message) == ("bob", Source.SLACK, text)
    # Not told back to Slack: it came from there.
    assert fake_slack.posts == []
    assert not incident.timeline.filter(kind=EntryKind.ACKNOWLEDGED).exists()


def test_a_thread_reply_is_conversation_too(event, fake_slack, bob_on_slack, incident):
    _, sent = event(message_event("on it", thread_ts="1700000000.000100"))
    sent.run()
    [message] = said(incident)
    assert (message.body, message.data["thread_ts"]) == ("on it", "1700000000.000100")


def test_exactly_verb_incident_n_acks_and_answers_in_the_thread(
    event, fake_slack, bob_on_slack, incident
):
    payload = message_event(f"ack incident {incident.number}")
    _, sent = event(payload)
    sent.run()
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    entry = incident.timeline.get(kind=EntryKind.ACKNOWLEDGED)
    assert (entry.source, entry.message) == (Source.SLACK, "Acknowledged by bob via Slack")
    [post] = fake_slack.posts
    assert (post.channel, post.ephemeral, post.thread_ts) == (
        INCIDENT_CHANNEL,
        False,
        payload["event"]["ts"],
    )
    assert post.text.startswith("Acknowledged <https://muster.example.com/incidents/")
    assert not incident.timeline.filter(kind=EntryKind.CHAT_MESSAGE).exists()


def test_more_than_verb_incident_n_is_conversation(event, fake_slack, bob_on_slack, incident):
    _, sent = event(message_event(f"should we ack incident {incident.number}?"))
    sent.run()
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED
    assert [m.body for m in said(incident)] == [f"should we ack incident {incident.number}?"]


def test_a_message_in_another_channel_is_left_alone(event, fake_slack, bob_on_slack, incident):
    response, sent = event(message_event(f"ack incident {incident.number}", channel="C0RANDOM"))
    assert (response.status_code, sent_names(sent)) == (200, [])


def test_a_channel_not_ready_yet_is_left_alone(event, fake_slack, bob_on_slack, incident):
    ChatChannel.objects.filter(incident=incident).update(state=ChatChannelState.ARCHIVED)
    response, sent = event(message_event("hello"))
    assert (response.status_code, sent_names(sent)) == (200, [])


@pytest.mark.parametrize(
    "fields",
    [
        {"bot_id": BOT_ID},
        {"subtype": "bot_message", "bot_id": "B0OTHER"},
        {"subtype": "bot_message"},
        {"subtype": "message_changed"},
        {"subtype": "message_deleted"},
        {"subtype": "channel_join"},
    ],
    ids=["own-bot-id", "other-bot", "bot_message", "changed", "deleted", "join"],
)
def test_bots_edits_and_deletions_are_left_alone(event, fake_slack, bob_on_slack, incident, fields):
    response, sent = event(message_event(f"ack incident {incident.number}", **fields))
    assert (response.status_code, sent_names(sent)) == (200, [])


def test_the_bots_own_user_is_left_alone_by_the_worker(event, fake_slack, bob_on_slack, incident):
    fake_slack.add_user(BOT_USER_ID, "bob@example.com")
    _, sent = event(message_event(f"ack incident {incident.number}", user=BOT_USER_ID))
    sent.run()
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED
    assert (said(incident), fake_slack.posts) == ([], [])


def test_a_mention_is_answered_once_by_its_app_mention(event, fake_slack, bob_on_slack, incident):
    # Slack sends both events for "@muster ack" in a channel the bot is in.
    text = f"<@{BOT_USER_ID}> ack"
    _, message_sent = event(message_event(text))
    _, mention_sent = event(mention_event(text, channel=INCIDENT_CHANNEL))
    assert sent_names(message_sent + mention_sent) == [MESSAGE_TASK, MENTION_TASK]
    message_sent.run()
    mention_sent.run()
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED  # the mention's channel is the incident's
    assert said(incident) == []
    assert [post.ephemeral for post in fake_slack.posts] == [False]


def test_an_unmapped_slack_user_is_heard_by_name(event, fake_slack, incident):
    fake_slack.add_user("U0JANE", "jane@elsewhere.example", name="jane")
    _, sent = event(message_event("disk *is* full", user="U0JANE"))
    sent.run()
    [message] = said(incident)
    assert message.author is None
    assert message.body == r"**jane \(Slack, not a Muster person\)**: disk *is* full"
    assert message.data["via"] == "slack"
    entry = incident.timeline.get(kind=EntryKind.CHAT_MESSAGE)
    assert (entry.actor, entry.actor_name, entry.source) == (
        None,
        "jane (Slack, not a Muster person)",
        Source.SLACK,
    )


def test_an_unmapped_slack_user_cannot_ack(event, fake_slack, incident):
    fake_slack.add_user("U0JANE", "jane@elsewhere.example", name="jane")
    _, sent = event(message_event(f"ack incident {incident.number}", user="U0JANE"))
    sent.run()
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED
    [post] = fake_slack.posts
    assert (post.ephemeral, post.user) == (True, "U0JANE")
    assert "No Muster account has the email address" in post.text


def test_a_deactivated_person_is_heard_as_not_a_muster_person(
    event, fake_slack, bob_on_slack, bob, incident
):
    User.objects.filter(pk=bob.pk).update(is_active=False)
    _, sent = event(message_event("still here"))
    sent.run()
    [message] = said(incident)
    assert message.author is None
    assert message.body.endswith(": still here")


def test_an_observer_talks_but_cannot_ack(event, fake_slack, charlie, incident):
    fake_slack.add_user("U0CHARLIE", "charlie@example.com")
    _, sent = event(message_event("watching", user="U0CHARLIE"))
    _, ack = event(message_event(f"ack incident {incident.number}", user="U0CHARLIE"))
    sent.run()
    ack.run()
    assert [(m.author.username, m.body) for m in said(incident)] == [("charlie", "watching")]
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED
    [post] = fake_slack.posts
    assert (post.ephemeral, post.text) == (
        True,
        "This needs the responder role; charlie is observer.",
    )


def test_a_retried_message_is_mirrored_once(event, fake_slack, bob_on_slack, incident):
    payload = message_event("checking the replica")
    _, sent = event(payload)
    _, again = event(payload, age=30, headers={"HTTP_X_SLACK_RETRY_NUM": "1"})
    assert sent_names(again) == []
    sent.run()
    assert len(said(incident)) == 1
    assert incident.timeline.filter(kind=EntryKind.CHAT_MESSAGE).count() == 1


def test_a_shared_file_is_said(event, fake_slack, bob_on_slack, incident):
    files = [{"id": "F1", "name": "graph.png"}]
    _, sent = event(message_event("look", subtype="file_share", files=files))
    sent.run()
    [message] = said(incident)
    assert message.body == "look\n\n_shared on Slack: graph\\.png_"


@pytest.mark.parametrize(
    ("slack", "markdown"),
    [
        ("a &lt;b&gt; &amp;amp; c", "a <b> &amp; c"),
        ("<https://x.example/a>", "https://x.example/a"),
        ("<https://x.example/a|a [b]>", r"[a \[b\]](https://x.example/a)"),
        ("<mailto:j@x.example|j@x.example>", "j@x.example"),
        ("hi <@U0BOB> and <@U0NOONE>", "hi @bob and @U0NOONE"),
        ("<#C123|ops> <!here> <!subteam^S1|@db-team>", r"#ops @here @db\-team"),
    ],
)
def test_slack_text_as_markdown(slack, markdown):
    names = {"U0BOB": "bob"}
    assert from_slack(slack, lambda user: names.get(user, "")) == markdown


def test_slack_down_still_lets_the_conversation_through(event, fake_slack, incident):
    fake_slack.add_user("U0JANE", "jane@example.com")
    fake_slack.fail_next("users.info", count=3)
    _, sent = event(message_event("db-1 is back", user="U0JANE"))
    sent.run()
    [message] = said(incident)
    assert message.author is None
    assert message.body == (
        r"**U0JANE \(Slack; Muster could not check who this is\)**: db-1 is back"
    )
