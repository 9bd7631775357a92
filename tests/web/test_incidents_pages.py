"""The incidents list and an incident's page: filters, paging, buttons, the war room, speed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from alerts.models import Alert
from incidents import opening
from incidents import services as verbs
from incidents.models import EntryKind, Incident, Service, Source, Status, TimelineEntry
from oncall.models import Page
from runbooks.models import GraphTemplate, Runbook
from tests.oncall.builders import make_policy, reachable
from warroom.models import Message, MessageKind
from warroom.services import incident_room, post

pytestmark = pytest.mark.django_db

ROW = re.compile(r'<tr id="incident-(\d+)" data-status="(\w+)">')


def rows(response) -> list[tuple[int, str]]:
    """Return (number, status) of each row of the incidents table, in order."""
    assert response.status_code == 200, response.content[:500]
    return [(int(n), s) for n, s in ROW.findall(response.content.decode())]


def numbers(response) -> list[int]:
    return [n for n, _ in rows(response)]


def open_one(service: Service, title: str = "Disk full on db-1", severity: int = 2) -> Incident:
    return opening.open_incident(service, title=title, severity=severity, source=Source.ALERT)


def many_incidents(service: Service, count: int, *, start: int = 5000, **fields) -> list[Incident]:
    """Insert `count` triggered incidents at once, numbered from `start`."""
    now = timezone.now()
    return Incident.objects.bulk_create(
        Incident(
            number=start + i,
            title=f"Incident {i}",
            service=service,
            triggered_at=now,
            **fields,
        )
        for i in range(count)
    )


@pytest.fixture
def three(service, bob) -> tuple[Incident, Incident, Incident]:
    """A triggered, an acknowledged and a resolved incident, oldest first."""
    triggered = open_one(service, "CPU hot")
    acked = verbs.acknowledge_incident(open_one(service, "Queue backlog"), by=bob, source="web")
    resolved = verbs.resolve_incident(open_one(service, "Disk full"), by=bob, source="web")
    return triggered, acked, resolved


def csrf_client(user) -> tuple[Client, str]:
    """A client that enforces CSRF like a browser, and the token a page gave it."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/incidents/").status_code == 200
    return client, client.cookies["csrftoken"].value


# --- the list --------------------------------------------------------------------------------


def test_the_list_shows_open_incidents_newest_first_by_default(web_bob, three):
    triggered, acked, _ = three

    response = web_bob.get("/incidents/")

    assert rows(response) == [(acked.number, "acknowledged"), (triggered.number, "triggered")]
    text = response.content.decode()
    assert '<table id="incident-list">' in text
    assert f'href="/incidents/{triggered.number}/"' in text
    assert "Queue backlog" in text and "checkout" in text and "SEV2" in text
    assert "bob" in text  # who acknowledged it, and owns it now


def test_the_list_filters_by_status(web_bob, three):
    triggered, acked, resolved = three

    def listed(query: str) -> list[int]:
        return numbers(web_bob.get(f"/incidents/?{query}"))

    assert listed("status=triggered") == [triggered.number]
    assert listed("status=acknowledged") == [acked.number]
    assert listed("status=resolved") == [resolved.number]
    assert listed("status=all") == [resolved.number, acked.number, triggered.number]
    assert listed("status=nonsense") == [acked.number, triggered.number]  # ignored: open


def test_the_list_filters_by_service_and_severity(web_bob, service):
    other = Service.objects.create(name="search")
    sev1 = open_one(service, severity=1)
    sev3 = open_one(service, severity=3)
    elsewhere = open_one(other, severity=1)

    assert numbers(web_bob.get(f"/incidents/?service={other.pk}")) == [elsewhere.number]
    assert numbers(web_bob.get("/incidents/?severity=1")) == [elsewhere.number, sev1.number]
    both = web_bob.get(f"/incidents/?service={service.pk}&severity=3")
    assert numbers(both) == [sev3.number]
    assert "selected>SEV3</option>" in both.content.decode()


def test_the_list_filters_by_time_opened(web_bob, service):
    now = timezone.now()
    fresh, week_old, old = open_one(service), open_one(service), open_one(service)
    Incident.objects.filter(pk=week_old.pk).update(created_at=now - timedelta(days=3))
    Incident.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=20))

    assert numbers(web_bob.get("/incidents/?since=24h")) == [fresh.number]
    assert numbers(web_bob.get("/incidents/?since=7d")) == [week_old.number, fresh.number]
    everything = [old.number, week_old.number, fresh.number]  # by number, newest first
    assert numbers(web_bob.get("/incidents/?since=30d")) == everything
    day = (now - timedelta(days=3)).date().isoformat()
    assert numbers(web_bob.get(f"/incidents/?start={day}&end={day}")) == [week_old.number]
    early = (now - timedelta(days=21)).date().isoformat()
    until = (now - timedelta(days=2)).date().isoformat()
    assert numbers(web_bob.get(f"/incidents/?start={early}&end={until}")) == [
        old.number,
        week_old.number,
    ]
    assert numbers(web_bob.get("/incidents/?start=not-a-date")) == everything


def test_the_list_pages_by_fifty_keeping_the_filters(web_bob, service):
    many_incidents(service, 120, severity=2)
    many_incidents(service, 5, start=9000, severity=4)  # filtered out

    first = web_bob.get("/incidents/?severity=2")
    assert numbers(first) == list(range(5119, 5069, -1))
    older = re.search(r'href="\?([^"]+)" rel="next"', first.content.decode()).group(1)
    assert older == "severity=2&amp;before=5070"

    second = web_bob.get("/incidents/?severity=2&before=5070")
    assert numbers(second) == list(range(5069, 5019, -1))
    assert "Newest" in second.content.decode()

    last = web_bob.get("/incidents/?severity=2&before=5020")
    assert numbers(last) == list(range(5019, 4999, -1))
    assert 'rel="next"' not in last.content.decode()


def test_the_list_takes_a_few_queries_however_many_incidents(
    web_bob, service, bob, django_assert_max_num_queries
):
    many_incidents(service, 150, status=Status.ACKNOWLEDGED, acknowledged_by=bob, assignee=bob)
    many_incidents(service, 100, start=7000)
    for n in range(3):
        Service.objects.create(name=f"service-{n}")

    with django_assert_max_num_queries(6):
        response = web_bob.get("/incidents/?status=all")

    assert len(rows(response)) == 50


def test_an_htmx_request_gets_the_table_alone(web_bob, three):
    triggered, acked, _ = three

    response = web_bob.get("/incidents/?status=open", HTTP_HX_REQUEST="true")

    text = response.content.decode()
    assert rows(response) == [(acked.number, "acknowledged"), (triggered.number, "triggered")]
    assert text.lstrip().startswith('<div id="incident-results" data-url="/incidents/?status=open"')
    assert "<html" not in text and '<form method="get"' not in text


# --- acting on incidents ---------------------------------------------------------------------


def test_ack_resolve_escalate_buttons_post_with_csrf_and_redirect_back(bob, service):
    incident = open_one(service)
    client, token = csrf_client(bob)
    back = "/incidents/?status=all"

    refused = client.post(f"/incidents/{incident.number}/ack/", {"next": back})
    assert refused.status_code == 403  # no CSRF token

    acked = client.post(
        f"/incidents/{incident.number}/ack/", {"next": back, "csrfmiddlewaretoken": token}
    )
    assert (acked.status_code, acked["Location"]) == (302, back)
    incident.refresh_from_db()
    assert (incident.status, incident.acknowledged_by) == (Status.ACKNOWLEDGED, bob)
    assert f"Incident #{incident.number} acknowledged." in client.get(back).content.decode()

    escalated = client.post(
        f"/incidents/{incident.number}/escalate/", {"csrfmiddlewaretoken": token}
    )
    assert escalated["Location"] == f"/incidents/{incident.number}/"  # no `next`: its page
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED  # escalating re-triggers

    client.post(
        f"/incidents/{incident.number}/resolve/",
        {"next": "https://evil.example.com/", "csrfmiddlewaretoken": token},
    )
    incident.refresh_from_db()
    assert (incident.status, incident.resolved_by) == (Status.RESOLVED, bob)
    entries = incident.timeline.filter(actor=bob).order_by("id")
    assert [(e.kind, e.source) for e in entries] == [
        (EntryKind.ACKNOWLEDGED, "web"),
        (EntryKind.ESCALATED, "web"),
        (EntryKind.RESOLVED, "web"),
    ]


def test_escalate_to_a_level_picked_from_the_policy_and_hear_whom_it_paged(
    web_bob, web_charlie, service, bob, alice
):

    reachable(alice, urgency="high")
    make_policy("checkout primary", {"users": [bob]}, {"users": [alice]}, service=service)
    incident = open_one(service)
    page = web_bob.get(f"/incidents/{incident.number}/").content.decode()
    picker = re.search(r'<select id="escalate-level" name="level">(.*?)</select>', page, re.S)
    assert picker, "the summary offers the policy's levels"
    options = re.findall(r'<option value="(\d*)">([^<]*)</option>', picker.group(1))
    assert options == [("", "the next level"), ("1", "level 1: bob"), ("2", "level 2: alice")]
    assert (
        "escalate-level" not in web_charlie.get(f"/incidents/{incident.number}/").content.decode()
    )

    done = web_bob.post(f"/incidents/{incident.number}/escalate/", {"level": "2"}, follow=True)
    assert f"Incident #{incident.number} escalated. Level 2: paging alice." in done.content.decode()
    assert Page.objects.filter(incident=incident, person=alice, manual=False).exists()

    for bad, says in (("9", "has 2 levels; choose 1 to 2, not 9"), ("two", "is not a level")):
        refused = web_bob.post(
            f"/incidents/{incident.number}/escalate/", {"level": bad}, follow=True
        )
        assert says in refused.content.decode()


def test_an_illegal_transition_is_a_message_not_an_error(web_bob, service, alice):
    incident = open_one(service)
    verbs.acknowledge_incident(incident, by=alice, source=Source.API)  # alice was faster

    response = web_bob.post(
        f"/incidents/{incident.number}/ack/", {"next": "/incidents/"}, follow=True
    )

    assert response.status_code == 200
    assert f"Incident #{incident.number} is already acknowledged." in response.content.decode()
    resolved = verbs.resolve_incident(incident, by=alice, source=Source.API)
    again = web_bob.post(f"/incidents/{resolved.number}/escalate/", follow=True)
    assert "is resolved; it cannot be escalated." in again.content.decode()


def test_an_htmx_button_gets_the_updated_row(web_bob, service, alice):
    incident = open_one(service)

    response = web_bob.post(
        f"/incidents/{incident.number}/ack/", {"next": "/incidents/"}, HTTP_HX_REQUEST="true"
    )

    assert rows(response) == [(incident.number, "acknowledged")]
    text = response.content.decode()
    assert text.lstrip().startswith("<tr") and "<html" not in text
    assert 'name="next" value="/incidents/"' in text
    assert "Acknowledge incident" not in text  # acknowledged: no Ack button any more
    assert "Resolve incident" in text

    verbs.resolve_incident(incident, by=alice, source=Source.API)
    late = web_bob.post(f"/incidents/{incident.number}/resolve/", HTTP_HX_REQUEST="true")
    assert rows(late) == [(incident.number, "resolved")]
    assert "is resolved; it cannot be resolved again." in late.content.decode()


def test_observers_see_no_buttons_and_may_not_post(web_charlie, service):
    incident = open_one(service)

    page = web_charlie.get("/incidents/").content.decode()
    detail = web_charlie.get(f"/incidents/{incident.number}/").content.decode()

    assert f'id="incident-{incident.number}"' in page
    assert "/ack/" not in page and "/resolve/" not in page
    assert ">Acknowledge<" not in detail and ">Resolve<" not in detail
    for action in ("ack", "resolve", "escalate", "severity", "note"):
        assert web_charlie.post(f"/incidents/{incident.number}/{action}/").status_code == 403
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_the_action_urls_take_only_posts_and_known_incidents(web_bob, service):
    incident = open_one(service)
    assert web_bob.get(f"/incidents/{incident.number}/ack/").status_code == 405
    assert web_bob.post("/incidents/999999/ack/").status_code == 404
    assert web_bob.get("/incidents/999999/").status_code == 404


def test_severity_and_notes_from_the_page(web_bob, service, bob):
    incident = open_one(service, severity=3)

    web_bob.post(f"/incidents/{incident.number}/severity/", {"severity": "1"})
    bad = web_bob.post(f"/incidents/{incident.number}/severity/", {"severity": "9"}, follow=True)
    web_bob.post(f"/incidents/{incident.number}/note/", {"text": "Rolled back deploy 42"})

    incident.refresh_from_db()
    assert (incident.severity, incident.urgency) == (1, "high")
    assert "Severity must be a whole number from 1" in bad.content.decode()
    note = incident.timeline.get(kind=EntryKind.NOTE)
    assert (note.message, note.actor, note.source) == ("Rolled back deploy 42", bob, "web")


# --- an incident's page ----------------------------------------------------------------------


@pytest.fixture
def busy(service, bob, charlie, make_integration) -> Incident:
    """An incident with a long timeline, many pages, many alerts and a chatty war room."""
    incident = open_one(service, "Checkout latency high")
    now = timezone.now()
    TimelineEntry.objects.bulk_create(
        TimelineEntry(
            incident=incident,
            at=now + timedelta(seconds=i),
            kind=EntryKind.NOTE,
            actor_name="bob",
            source="web",
            message=f"note {i}",
        )
        for i in range(300)
    )
    Page.objects.bulk_create(
        Page(
            incident=incident,
            person=bob if i % 2 else charlie,
            channel="sms",
            address="+14155550101",
            status="failed" if i == 59 else "delivered",
            error="Twilio said 21211: +14155550101 is an invalid number" if i == 59 else "",
            send_after=now,
            sent_at=now,
        )
        for i in range(60)
    )
    integration = make_integration()
    Alert.objects.bulk_create(
        Alert(
            integration=integration,
            fingerprint=f"fp-{i}",
            status="firing",
            service=service,
            incident=incident,
            summary=f"p99 latency above 2s ({i})",
            labels={"alertname": "Latency", "instance": f"web-{i}"},
            links=[
                {"kind": "graph", "url": f"https://grafana.example.com/d/{i}", "text": "Graph"},
                {"kind": "runbook", "url": "javascript:alert(1)", "text": "Evil"},
            ],
            first_seen=now + timedelta(seconds=i),
            last_seen=now + timedelta(seconds=i),
        )
        for i in range(30)
    )
    GraphTemplate.objects.create(
        service=service, name="Node", url_template="https://grafana.example.com/node?h={instance}"
    )
    Runbook.objects.create(
        title="Latency", service=service, body="1. Check **the cache**\n<script>x()</script>"
    )
    room = incident_room(incident)
    Message.objects.bulk_create(
        Message(room=room, author=bob, body=f"msg {i}", html=f"<p>msg {i}</p>") for i in range(150)
    )
    return incident


def test_the_incident_page_shows_everything_in_few_queries(
    web_bob, busy, django_assert_max_num_queries
):
    with django_assert_max_num_queries(20):
        response = web_bob.get(f"/incidents/{busy.number}/")

    assert response.status_code == 200
    text = response.content.decode()
    assert f"#{busy.number} Checkout latency high" in text
    assert re.search(
        r'<span id="incident-status" class="badge status-triggered" '
        r'data-status="triggered"[^>]*>triggered</span>',
        text,
    )
    for name in ("Acknowledge", "Resolve", "Escalate", "Send"):
        assert f">{name}</button>" in text
    assert '<label for="room-body">Message</label>' in text
    assert '<section id="war-room"' in text and '<ol id="room-messages"' in text
    # The war room: the latest 100 messages, oldest of them first.
    said = re.findall(r"<p>msg (\d+)</p>", text)
    assert said[0] == "50" and said[-1] == "149" and len(said) == 100
    # Pages: who, how, the address masked, the delivery status and its error.
    assert "+14•••••••01" in text and "+14155550101" not in text
    assert text.count('<tr id="page-') == 50
    # The error quotes the number: masked there too.
    assert "Twilio said 21211: +14•••••••01 is an invalid number" in text
    # Alerts with labels as chips and only http(s) links; graph templates filled.
    assert '<li class="chip"><span>instance</span>=web-29</li>' in text
    assert "https://grafana.example.com/d/29" in text
    assert "javascript:" not in text
    assert "https://grafana.example.com/node?h=web-0" in text
    # The runbook, rendered and sanitized.
    assert "<strong>the cache</strong>" in text and "<script>x()" not in text
    # The timeline: newest first, 100 of them, and a link to older ones.
    notes = re.findall(r'<span class="what">note (\d+)</span>', text)
    assert notes[0] == "299" and notes[-1] == "200" and len(notes) == 100
    assert f'href="/incidents/{busy.number}/postmortem/"' in text


def test_the_timeline_pages_back_with_before(web_bob, busy):
    first = web_bob.get(f"/incidents/{busy.number}/").content.decode()
    older = re.search(r'\?before=(\d+)#timeline" rel="next"', first).group(1)

    second = web_bob.get(f"/incidents/{busy.number}/?before={older}").content.decode()
    notes = re.findall(r'<span class="what">note (\d+)</span>', second)
    assert (notes[0], notes[-1], len(notes)) == ("199", "100", 100)
    third_link = re.search(r'\?before=(\d+)#timeline" rel="next"', second).group(1)

    third = web_bob.get(f"/incidents/{busy.number}/timeline/?before={third_link}")
    text = third.content.decode()
    notes = re.findall(r'<span class="what">note (\d+)</span>', text)
    assert (notes[0], notes[-1]) == ("99", "0")
    assert "<html" not in text  # the fragment alone
    last_link = re.search(r'\?before=(\d+)#timeline" rel="next"', text).group(1)

    last = web_bob.get(f"/incidents/{busy.number}/?before={last_link}").content.decode()
    assert re.findall(r'<span class="badge kind">([^<]+)</span>', last) == ["incident opened"]
    assert 'rel="next"' not in last


def test_the_summary_fragment_follows_the_state(web_bob, service, alice):
    incident = open_one(service)
    verbs.acknowledge_incident(incident, by=alice, source=Source.API)

    text = web_bob.get(f"/incidents/{incident.number}/summary/").content.decode()

    assert text.lstrip().startswith('<section id="incident-summary"')
    assert 'data-status="acknowledged"' in text and ">acknowledged</span>" in text
    assert ">Acknowledge</button>" not in text and ">Resolve</button>" in text
    assert "by alice" in text


def test_the_pages_fragment_shows_who_was_paged_and_how_it_went(
    web_bob, busy, django_assert_max_num_queries
):
    with django_assert_max_num_queries(6):
        response = web_bob.get(f"/incidents/{busy.number}/pages/")

    text = response.content.decode()
    assert text.lstrip().startswith('<section id="pages"')
    assert f'data-url="/incidents/{busy.number}/pages/"' in text
    assert text.count('<tr id="page-') == 50
    # The error quotes the number: masked there too.
    assert "Twilio said 21211: +14•••••••01 is an invalid number" in text
    assert "+14155550101" not in text
    assert "Only the latest 50 pages are shown." in text
    assert "<html" not in text


def test_a_command_typed_in_the_embedded_room_works_without_javascript(web_bob, service):
    incident = open_one(service)

    response = web_bob.post(f"/incidents/{incident.number}/say/", {"body": "/resolve"})

    assert response["Location"] == f"/incidents/{incident.number}/#war-room"
    incident.refresh_from_db()
    assert incident.status == Status.RESOLVED
    kinds = list(
        Message.objects.filter(room__incident=incident).order_by("id").values_list("kind", "body")
    )
    assert kinds[0] == (MessageKind.COMMAND, "/resolve")
    page = web_bob.get(response["Location"]).content.decode()
    assert 'data-status="resolved"' in page and "Resolved" in page


def test_observers_talk_in_the_room_but_empty_messages_are_refused(web_charlie, service):
    incident = open_one(service)

    web_charlie.post(f"/incidents/{incident.number}/say/", {"body": "looking at the graphs"})
    empty = web_charlie.post(f"/incidents/{incident.number}/say/", {"body": " "}, follow=True)

    said = Message.objects.get(room__incident=incident, kind=MessageKind.CHAT)
    assert (said.body, said.author.username) == ("looking at the graphs", "charlie")
    assert "Type something to say." in empty.content.decode()


def test_the_plain_room_page_wears_the_web_frame(web_bob, service):
    incident = open_one(service)
    post(incident_room(incident), "hello **there**", author=None, kind=MessageKind.BOT)

    text = web_bob.get(f"/rooms/incident/{incident.number}/").content.decode()

    assert '<nav aria-label="Main">' in text  # web/base.html
    assert '<section id="war-room"' in text and "<strong>there</strong>" in text
    assert f'action="/rooms/incident/{incident.number}/"' in text
    assert 'id="incident-status"' in text
