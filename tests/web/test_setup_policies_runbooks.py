"""Setup pages: escalation policies with their ordered steps, and runbooks (editor, preview,
history)."""

from __future__ import annotations

import pytest

from accounts.models import AuditEntry
from incidents.models import Service
from oncall.models import EscalationPolicy, EscalationStep, Schedule, Team
from runbooks.models import Runbook
from tests.web.test_setup_pages import csrf_client, post

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy(db) -> EscalationPolicy:
    return EscalationPolicy.objects.create(name="Checkout primary")


@pytest.fixture
def schedule(db) -> Schedule:
    return Schedule.objects.create(name="Primary rota")


def add_step(policy: EscalationPolicy, position: int, delay: int, *, users=(), schedules=()):
    step = EscalationStep.objects.create(policy=policy, position=position, delay_minutes=delay)
    step.users.set(users)
    step.schedules.set(schedules)
    return step


def delays(policy: EscalationPolicy) -> list[int]:
    steps = policy.steps.order_by("position", "id")
    return list(steps.values_list("delay_minutes", flat=True))


# --- escalation policies ----------------------------------------------------------------------


def test_policy_list_shows_steps(web_charlie, policy, schedule, bob):
    add_step(policy, 0, 5, schedules=[schedule])
    add_step(policy, 1, 15, users=[bob])
    EscalationPolicy.objects.create(name="Empty")
    html = web_charlie.get("/setup/policies/").content.decode()
    row = html.split(f'id="policy-{policy.pk}"')[1].split("</tr>")[0]
    assert (
        f'<li><span class="target">on call in <a href="/oncall/schedules/{schedule.pk}/">'
        'Primary rota</a></span> <span class="small muted">then 5 min</span></li>'
    ) in row
    assert '<span class="target">bob</span>' in row
    assert '<li class="problem">no steps</li>' in html


def test_policy_list_query_count(web_charlie, django_assert_max_num_queries, schedule, bob):
    team = Team.objects.create(name="SRE")
    for n in range(60):
        policy = EscalationPolicy.objects.create(name=f"p{n:02}", team=team)
        add_step(policy, 0, 5, schedules=[schedule])
        add_step(policy, 1, 10, users=[bob])
    with django_assert_max_num_queries(9):
        html = web_charlie.get("/setup/policies/").content.decode()
    assert html.count('<tr id="policy-') == 50


def test_admin_creates_a_policy_then_adds_steps(alice, bob, schedule):
    client = csrf_client(alice)
    response = post(
        client, "/setup/policies/new/", {"name": "Payments", "description": "", "repeat": "2"}
    )
    policy = EscalationPolicy.objects.get(name="Payments")
    assert response["Location"] == f"/setup/policies/{policy.pk}/"
    assert policy.repeat == 2
    post(
        client,
        f"/setup/policies/{policy.pk}/steps/",
        {"delay_minutes": "5", "schedules": [schedule.pk]},
    )
    post(client, f"/setup/policies/{policy.pk}/steps/", {"delay_minutes": "20", "users": [bob.pk]})
    steps = list(policy.steps.order_by("position"))
    assert [(s.position, s.delay_minutes) for s in steps] == [(0, 5), (1, 20)]
    assert list(steps[0].schedules.all()) == [schedule]
    assert list(steps[1].users.all()) == [bob]
    html = client.get(f"/setup/policies/{policy.pk}/").content.decode()
    assert "<strong>Step 1:</strong> page" in html and "<strong>Step 2:</strong> page" in html
    assert "After the last step the policy runs 2 more times." in html
    assert AuditEntry.objects.filter(action="created").count() == 3


def test_step_needs_someone_to_page(web_alice, policy):
    response = web_alice.post(f"/setup/policies/{policy.pk}/steps/", {"delay_minutes": "5000"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "a step needs someone to page: people, schedules or teams" in html
    field = html.split('for="id_delay_minutes"')[1].split('<div class="field')[0]
    assert "Ensure this value is less than or equal to 1440." in field
    assert not policy.steps.exists()


def test_policy_settings_errors(web_alice, policy):
    response = web_alice.post(f"/setup/policies/{policy.pk}/", {"name": "", "repeat": "10"})
    html = response.content.decode()
    assert "Ensure this value is less than or equal to 9." in html.split('for="id_repeat"')[1]
    assert "This field is required." in html.split('for="id_name"')[1].split('<div class="f')[0]


def test_steps_move_and_are_removed(alice, policy, bob):
    steps = [add_step(policy, n, delay, users=[bob]) for n, delay in enumerate((1, 2, 3))]
    client = csrf_client(alice)
    post(client, f"/setup/policies/{policy.pk}/steps/{steps[2].pk}/move/", {"direction": "up"})
    assert delays(policy) == [1, 3, 2]
    post(client, f"/setup/policies/{policy.pk}/steps/{steps[0].pk}/move/", {"direction": "down"})
    assert delays(policy) == [3, 1, 2]
    post(client, f"/setup/policies/{policy.pk}/steps/{steps[0].pk}/delete/")
    assert delays(policy) == [3, 2]
    assert list(policy.steps.order_by("position").values_list("position", flat=True)) == [0, 1]


@pytest.mark.parametrize("who", ["web_bob", "web_charlie"])
def test_only_admins_change_policies(request, who, policy, bob):
    client = request.getfixturevalue(who)
    step = add_step(policy, 0, 5, users=[bob])
    base = f"/setup/policies/{policy.pk}/"
    assert client.get(base).status_code == 200
    assert "Add a step" not in client.get(base).content.decode()
    for url, data in [
        ("/setup/policies/new/", {"name": "x", "repeat": "0"}),
        (base, {"name": "renamed", "repeat": "0"}),
        (base + "steps/", {"delay_minutes": "1", "users": [bob.pk]}),
        (base + f"steps/{step.pk}/delete/", {}),
        (base + f"steps/{step.pk}/move/", {"direction": "down"}),
    ]:
        assert client.post(url, data).status_code == 403, url
    assert list(EscalationPolicy.objects.values_list("name", flat=True)) == ["Checkout primary"]
    assert policy.steps.count() == 1


# --- runbooks ---------------------------------------------------------------------------------


def test_runbook_list(web_charlie, alice, service):
    Runbook(
        title="Disk full",
        service=service,
        body="x",
        matchers=[{"label": "alertname", "op": "=", "value": "DiskFull"}],
    ).save(author=alice)
    Runbook(title="General", position=5).save(author=alice)
    html = web_charlie.get("/setup/runbooks/").content.decode()
    assert "<code>alertname=&quot;DiskFull&quot;</code>" in html
    assert "<td>any service</td>" in html and "<td>checkout</td>" in html
    assert html.index(">Disk full<") < html.index(">General<")


def test_runbook_list_query_count(web_charlie, django_assert_max_num_queries, service):
    Runbook.objects.bulk_create(
        Runbook(title=f"rb{n}", service=service if n % 2 else None, position=n) for n in range(70)
    )
    with django_assert_max_num_queries(4):
        html = web_charlie.get("/setup/runbooks/").content.decode()
    assert html.count('<tr id="runbook-') == 50


def test_admin_creates_and_edits_a_runbook_keeping_versions(alice, service):
    client = csrf_client(alice)
    data = {
        "title": "Disk full",
        "service": service.pk,
        "matchers": 'alertname="DiskFull"',
        "body": "# Disk\n\n1. Look\n2. Clean\n",
        "position": "0",
    }
    response = post(client, "/setup/runbooks/new/", data)
    runbook = Runbook.objects.get()
    assert response["Location"] == f"/setup/runbooks/{runbook.pk}/"
    assert runbook.matchers == [{"label": "alertname", "op": "=", "value": "DiskFull"}]
    post(client, f"/setup/runbooks/{runbook.pk}/", {**data, "body": "# Disk\n\n1. Look\n2. Wipe\n"})
    runbook.refresh_from_db()
    assert runbook.version == 2
    assert list(runbook.versions.values_list("number", "author__username")) == [
        (2, "alice"),
        (1, "alice"),
    ]
    edit = client.get(f"/setup/runbooks/{runbook.pk}/").content.decode()
    assert "<li>Wipe</li>" in edit  # the saved text, rendered in the preview pane
    assert 'hx-post="/setup/runbooks/preview/"' in edit


def test_runbook_errors_are_shown(web_alice):
    response = web_alice.post(
        "/setup/runbooks/new/",
        {"title": "", "matchers": "=db", "body": "x", "position": "0"},
    )
    html = response.content.decode()
    assert "This field is required." in html.split('for="id_title"')[1].split('<div class="f')[0]
    matchers = html.split('for="id_matchers"')[1].split('<div class="f')[0]
    assert "cannot read a matcher at" in matchers
    assert not Runbook.objects.exists()


def test_preview_renders_sanitized_markdown(web_alice, web_charlie):
    response = web_alice.post(
        "/setup/runbooks/preview/",
        {"body": "**bold** <script>alert(1)</script>"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith('<div class="markdown"><p><strong>bold</strong>')
    assert "<script>" not in html
    assert web_charlie.post("/setup/runbooks/preview/", {"body": "x"}).status_code == 403


def test_preview_button_works_without_javascript(web_alice):
    response = web_alice.post(
        "/setup/runbooks/new/",
        {"title": "Draft", "body": "- one\n- two", "position": "0", "preview": "1"},
    )
    html = response.content.decode()
    assert "<li>one</li>" in html
    assert "Draft" in html
    assert not Runbook.objects.exists()  # previewing saves nothing


def test_version_history_and_diff(web_charlie, alice, django_assert_max_num_queries):
    runbook = Runbook(title="Disk", body="keep\nold <line>\n")
    runbook.save(author=alice)
    for n in range(2, 61):
        runbook.body = f"keep\nnew <line> {n}\n"
        runbook.save(author=alice)
    with django_assert_max_num_queries(5):
        history = web_charlie.get(f"/setup/runbooks/{runbook.pk}/versions/").content.decode()
    assert history.count('<tr id="version-') == 50
    assert '<span class="badge">current</span>' in history.split('id="version-60"')[1][:400]
    first = web_charlie.get(f"/setup/runbooks/{runbook.pk}/versions/1/").content.decode()
    assert "Changes from" not in first
    assert "<p>keep<br>\nold &lt;line&gt;</p>" in first
    second = web_charlie.get(f"/setup/runbooks/{runbook.pk}/versions/2/").content.decode()
    assert '<span class="diff-del">-old &lt;line&gt;</span>' in second
    assert '<span class="diff-add">+new &lt;line&gt; 2</span>' in second
    assert '<span class="">keep</span>' not in second  # context lines carry a leading space
    assert '<span class=""> keep</span>' in second
    assert web_charlie.get(f"/setup/runbooks/{runbook.pk}/versions/99/").status_code == 404


@pytest.mark.parametrize("who", ["web_bob", "web_charlie"])
def test_only_admins_change_runbooks(request, who, alice):
    client = request.getfixturevalue(who)
    runbook = Runbook(title="Disk", body="x")
    runbook.save(author=alice)
    page = client.get(f"/setup/runbooks/{runbook.pk}/").content.decode()
    assert "hx-post" not in page and ">Save</button>" not in page
    data = {"title": "changed", "body": "y", "position": "0"}
    assert client.post("/setup/runbooks/new/", data).status_code == 403
    assert client.post(f"/setup/runbooks/{runbook.pk}/", data).status_code == 403
    runbook.refresh_from_db()
    assert (runbook.title, runbook.version) == ("Disk", 1)


def test_runbook_service_choice(web_alice):
    Service.objects.create(name="search")
    html = web_alice.get("/setup/runbooks/new/").content.decode()
    assert '<option value="" selected>Any service</option>' in html
