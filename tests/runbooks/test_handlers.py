"""The chat handlers for `runbook`, `graph` and `run`, fed by the real command parser."""

from __future__ import annotations

import pytest

from incidents.models import EntryKind
from runbooks.models import Action, ActionRun, GraphTemplate, RunStatus
from runbooks.tasks import run_action
from warroom.commands.parser import parse
from warroom.commands.specs import Command
from warroom.handlers import runbook as handlers
from warroom.markdown import render

LABELS = {"alertname": "DiskFull", "instance": "db-1:9100", "team": "db"}


def command(text: str) -> Command:
    parsed = parse(text, surface="chat")
    assert isinstance(parsed, Command), parsed
    return parsed


@pytest.fixture
def book(make_runbook, service):
    runbook = make_runbook(
        "Disk full",
        service=service,
        matchers=[{"label": "team", "op": "=", "value": "db"}],
        body="## Free space\n\n```\ndu -sh /var/log\n```",
    )
    Action.objects.create(
        runbook=runbook,
        name="restart-db",
        description="Restart the primary",
        url="https://jenkins.example.com/job/restart/buildWithParameters?token=s3cret",
        payload_template='{"host": "{{labels.instance}}", "by": "{{run.requested_by}}", '
        '"token": "t0ken-in-body"}',
    )
    Action.objects.create(
        runbook=runbook, name="failover", url="https://jenkins.example.com/job/fo", role="admin"
    )
    return runbook


def test_runbook_replies_with_the_title_body_link_and_actions(book, make_incident, charlie):
    incident = make_incident(LABELS)
    reply = handlers.runbook(command("runbook"), charlie, "chat", incident)
    assert reply.incident == incident.number and not reply.changed
    assert f"/api/v1/runbooks/{book.pk}/" in reply.text
    assert "**Runbook: [Disk full](" in reply.text
    assert "du -sh /var/log" in reply.text
    assert "- `run restart-db` — Restart the primary" in reply.text
    assert "- `run failover` (admins)" in reply.text
    html = render(reply.text)
    assert "<pre><code>du -sh /var/log" in html
    assert 'href="http://' in html


def test_runbook_names_an_incident_by_number_anywhere(book, make_incident, charlie):
    incident = make_incident(LABELS)
    reply = handlers.runbook(command(f"runbook #{incident.number}"), charlie, "chat", None)
    assert "Disk full" in reply.text


def test_runbook_without_an_incident_asks_which(db, charlie):
    reply = handlers.runbook(command("runbook"), charlie, "chat", None)
    assert reply.text == "Which incident? Add its number, e.g. `runbook #1042`."


def test_runbook_for_an_unknown_incident_says_so(db, charlie):
    reply = handlers.runbook(command("runbook #999999"), charlie, "chat", None)
    assert reply.text == "There is no incident #999999."


def test_runbook_when_none_matches_says_so(book, make_incident, charlie):
    incident = make_incident({"team": "web"})
    reply = handlers.runbook(command("runbook"), charlie, "chat", incident)
    assert reply.text.startswith(f"No runbook matches #{incident.number} (service checkout")


def test_a_long_runbook_is_cut_with_a_link_to_the_rest(make_runbook, service, make_incident, bob):
    make_runbook("Long", service=service, body="line\n" * 5000)
    reply = handlers.runbook(command("runbook"), bob, "chat", make_incident(LABELS))
    assert len(reply.text) < 9_000
    assert "the rest is in [the runbook](" in reply.text


def test_graph_replies_with_links_and_image_previews(make_incident, service, charlie, settings):
    settings.IMAGE_HOSTS = ["g.example.com"]  # previews only from the hosts an admin allowed
    GraphTemplate.objects.create(
        service=service,
        name="Host [CPU]",
        url_template="https://g.example.com/d?host={instance}",
        image_url_template="https://g.example.com/render?host={instance}",
    )
    incident = make_incident(
        LABELS,
        links=[{"kind": "generator", "url": "http://prometheus:9090/graph?g0.expr=(up)"}],
    )
    reply = handlers.graph(command("graph"), charlie, "chat", incident)
    assert reply.text.splitlines() == [
        f"**Graphs for #{incident.number}**",
        "",
        r"- [Host \[CPU\]](https://g.example.com/d?host=db-1%3A9100)",
        "- [Source graph](http://prometheus:9090/graph?g0.expr=%28up%29)",
        "",
        r"![Host \[CPU\]](https://g.example.com/render?host=db-1%3A9100)",
    ]
    html = render(reply.text)
    assert '<img src="https://g.example.com/render?host=db-1%3A9100"' in html


def test_graph_without_any_says_so(make_incident, charlie):
    incident = make_incident(LABELS)
    reply = handlers.graph(command("graph"), charlie, "chat", incident)
    assert reply.text.startswith(f"No graphs for #{incident.number}")


def test_graph_without_an_incident_asks_which(db, charlie):
    assert handlers.graph(command("graph"), charlie, "chat", None).text.startswith(
        "Which incident?"
    )


def test_run_shows_what_it_will_call_and_asks_for_confirmation(book, make_incident, bob):
    incident = make_incident(LABELS)
    reply = handlers.run_action(command("run restart-db"), bob, "chat", incident)
    assert not reply.changed
    assert reply.text.startswith(
        "**restart\\-db** will POST to `jenkins.example.com/job/restart/buildWithParameters` "
        "(timeout 10 s) with a 60-byte body, filled in with:\n\n"
        "- `labels.instance`: `db-1:9100`\n- `run.requested_by`: `bob`\n\n"
    )
    assert "s3cret" not in reply.text  # the query may hold a token
    # The reply is posted to the room, which observers read: the body, with the admin's
    # literal token, is not in it.
    assert "t0ken-in-body" not in reply.text
    assert reply.text.endswith("Type `run restart-db confirm` to start it.")
    assert not ActionRun.objects.exists()
    assert not incident.timeline.filter(kind=EntryKind.ACTION).exists()


@pytest.mark.parametrize("source", ["slack", "mattermost"])
def test_run_confirm_from_slack_or_mattermost_says_the_result_goes_to_the_war_room(
    book, make_incident, bob, source
):
    incident = make_incident(LABELS)
    reply = handlers.run_action(command("run restart-db confirm"), bob, source, incident)
    assert reply.changed
    assert reply.text.endswith(
        f"The result will be posted in the war room of #{incident.number} in Muster."
    )


def test_run_confirm_starts_the_run_and_records_it(book, make_incident, bob):
    incident = make_incident(LABELS)
    reply = handlers.run_action(command("run restart-db confirm"), bob, "chat", incident)
    run = ActionRun.objects.get()
    assert reply.changed and reply.incident == incident.number
    assert reply.text == (
        f"Started **restart\\-db** for #{incident.number} (run {run.pk}): POST "
        "`jenkins.example.com/job/restart/buildWithParameters`. The result will be posted here."
    )
    assert (run.status, run.requested_by, run.request_body) == (
        RunStatus.PENDING,
        bob,
        '{"host": "db-1:9100", "by": "bob", "token": "t0ken-in-body"}',
    )
    entry = incident.timeline.get(kind=EntryKind.ACTION)
    assert entry.message.startswith("bob started action restart-db")
    assert entry.source == "chat"
    again = handlers.run_action(command("run restart-db confirm"), bob, "chat", incident)
    assert "already pending" in again.text and not again.changed


def test_run_is_refused_to_an_observer_before_anything_happens(book, make_incident, charlie):
    incident = make_incident(LABELS)
    for text in ("run restart-db", "run restart-db confirm"):
        reply = handlers.run_action(command(text), charlie, "chat", incident)
        assert reply.text == "Running restart-db needs the responder role; charlie is observer."
    assert not ActionRun.objects.exists()


def test_run_an_admin_action_as_a_responder_is_refused(book, make_incident, bob):
    reply = handlers.run_action(command("run failover confirm"), bob, "chat", make_incident(LABELS))
    assert reply.text == "Running failover needs the admin role; bob is responder."


def test_run_a_mistyped_action_suggests_the_closest(book, make_incident, bob):
    reply = handlers.run_action(command("run restart-bd"), bob, "chat", make_incident(LABELS))
    assert "has no action `restart-bd`. Did you mean `run restart-db`?" in reply.text
    assert "`failover`" in reply.text


def test_run_names_are_not_case_sensitive(book, make_incident, bob):
    reply = handlers.run_action(command("run Restart-DB"), bob, "chat", make_incident(LABELS))
    assert "will POST to" in reply.text


def test_run_without_a_name_lists_the_actions(book, make_incident, bob):
    reply = handlers.run_action(Command(name="run"), bob, "chat", make_incident(LABELS))
    assert "- `run restart-db` — Restart the primary" in reply.text


def test_run_outside_an_incident_room_asks_which(db, bob):
    reply = handlers.run_action(command("run restart-db"), bob, "chat", None)
    assert reply.text.startswith("Which incident?")


def test_run_when_a_label_is_missing_says_which(book, make_incident, bob):
    incident = make_incident({"team": "db"})
    reply = handlers.run_action(command("run restart-db"), bob, "chat", incident)
    assert reply.text == (
        "restart-db cannot run: the payload needs labels.instance, which this incident "
        "does not have."
    )


def test_run_confirm_then_the_task_posts_its_result_to_the_timeline(
    make_runbook, service, make_incident, bob, endpoint
):
    runbook = make_runbook("Ops", service=service)
    Action.objects.create(runbook=runbook, name="ping", url=endpoint.url("/ok"))
    incident = make_incident(LABELS)
    handlers.run_action(command("run ping confirm"), bob, "chat", incident)
    run_action(ActionRun.objects.get().pk)
    messages = list(
        incident.timeline.filter(kind=EntryKind.ACTION).values_list("message", flat=True)
    )
    # The answer stays on the run: the timeline and the room are read by observers too.
    assert messages[-1] == "action ping succeeded: HTTP 200"
