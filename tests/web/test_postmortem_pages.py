"""The postmortem pages: the editor, its forms, the downloads and the printable page."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from incidents import opening, services, timeline
from incidents.action_items import add_action_item
from incidents.curation import annotate_entry
from incidents.models import ActionItem, EntryKind, Incident, Postmortem, Source, TimelineEntry
from incidents.postmortems import get_or_start_postmortem

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(service, bob) -> Incident:
    incident = opening.open_incident(
        service, title="Disk full on db-1", severity=1, source=Source.ALERT, actor_name="prom"
    )
    services.acknowledge_incident(incident, by=bob, source=Source.SMS)
    services.add_note(incident, text="db-1 at 99%", by=bob, source=Source.CHAT)
    services.resolve_incident(incident, by=bob, source=Source.CHAT)
    return incident


def page_url(incident: Incident, rest: str = "") -> str:
    return f"/incidents/{incident.number}/postmortem/{rest}"


def test_the_editor_has_the_labelled_fields_the_save_button_and_the_export_links(web_bob, incident):
    response = web_bob.get(page_url(incident))
    assert response.status_code == 200
    html = response.content.decode()
    for name, label in [
        ("summary", "Summary"),
        ("impact", "Impact"),
        ("root_cause", "Root cause"),
        ("contributing_factors", "Contributing factors"),
    ]:
        assert f'<label for="pm-{name}">{label}</label>' in html
        assert f'<textarea id="pm-{name}" name="{name}"' in html
    assert '<button type="submit" class="primary">Save</button>' in html
    n = incident.number
    assert f'href="/incidents/{n}/postmortem/export.md" download>Markdown</a>' in html
    assert f'href="/incidents/{n}/postmortem/export.json" download>JSON</a>' in html
    assert f'href="/incidents/{n}/postmortem/print/">Printable page</a>' in html
    assert '<dt>Time to acknowledge</dt><dd id="tta">' in html
    assert "web/postmortem.css" in html


def test_saving_the_fields_starts_the_postmortem_and_shows_them(web_bob, incident, bob):
    response = web_bob.post(
        page_url(incident),
        {
            "summary": "Disk full\r\non db-1",
            "impact": "Orders failed",
            "root_cause": "",
            "contributing_factors": "",
            "back": page_url(incident) + "?show=all",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == page_url(incident) + "?show=all#fields"
    postmortem = Postmortem.objects.get(incident=incident)
    assert (postmortem.summary, postmortem.impact, postmortem.updated_by) == (
        "Disk full\non db-1",
        "Orders failed",
        bob,
    )
    page = web_bob.get(response["Location"]).content.decode()
    assert "Disk full\non db-1</textarea>" in page
    assert "Saved." in page


def test_a_back_link_elsewhere_is_ignored(web_bob, incident):
    response = web_bob.post(page_url(incident), {"summary": "x", "back": "//evil.example/"})
    assert response["Location"] == page_url(incident) + "#fields"


def test_action_items_are_added_edited_done_and_deleted_through_forms(web_bob, incident, bob):
    response = web_bob.post(
        page_url(incident, "action-items/"),
        {"description": "Alert at 80%", "owner": str(bob.pk), "due": "2025-03-08"},
    )
    assert response.status_code == 302
    item = ActionItem.objects.get()
    assert (item.description, item.owner, str(item.due)) == ("Alert at 80%", bob, "2025-03-08")
    web_bob.post(
        page_url(incident, f"action-items/{item.pk}/"),
        {"description": "Alert at 75%", "owner": "", "due": "", "done": "on"},
    )
    item.refresh_from_db()
    assert (item.description, item.owner, item.due, item.done) == ("Alert at 75%", None, None, True)
    bad = web_bob.post(page_url(incident, "action-items/"), {"description": "x", "due": "soon"})
    assert "The due date must be a date" in web_bob.get(bad["Location"]).content.decode()
    web_bob.post(page_url(incident, f"action-items/{item.pk}/delete/"))
    assert not ActionItem.objects.exists()


def test_entries_are_pinned_hidden_and_annotated_and_hidden_ones_stay(web_bob, incident):
    note = incident.timeline.get(kind=EntryKind.NOTE)
    for data in ({"action": "hide"}, {"action": "annotate", "annotation": "noise"}):
        response = web_bob.post(page_url(incident, f"timeline/{note.pk}/"), data)
        assert response["Location"] == page_url(incident) + f"#entry-{note.pk}"
    assert TimelineEntry.objects.filter(pk=note.pk).exists()
    page = web_bob.get(page_url(incident)).content.decode()
    assert f'<tr id="entry-{note.pk}" class="pm-hidden"' in page
    assert 'value="noise"' in page
    markdown = web_bob.get(page_url(incident, "export.md")).content.decode()
    assert "db-1 at 99%" not in markdown
    other = opening.open_incident(incident.service, title="Other", source=Source.API)
    foreign = other.timeline.get()
    assert (
        web_bob.post(page_url(incident, f"timeline/{foreign.pk}/"), {"action": "pin"}).status_code
        == 404
    )


def test_exports_download_with_a_file_name_and_the_print_page_is_standalone(web_charlie, incident):
    markdown = web_charlie.get(page_url(incident, "export.md"))
    assert markdown.status_code == 200
    assert markdown["Content-Type"] == "text/markdown; charset=utf-8"
    n = incident.number
    assert markdown["Content-Disposition"] == f'attachment; filename="postmortem-{n}.md"'
    assert markdown.content.decode().startswith(f"# Postmortem: #{n} Disk full on db\\-1\n")
    data = web_charlie.get(page_url(incident, "export.json"))
    assert data["Content-Type"] == "application/json"
    assert data["Content-Disposition"] == f'attachment; filename="postmortem-{n}.json"'
    assert json.loads(data.content)["incident"]["number"] == n
    printable = web_charlie.get(page_url(incident, "print/"))
    assert printable["Content-Type"] == "text/html; charset=utf-8"
    assert "Content-Disposition" not in printable
    assert b"@media print" in printable.content and b"web/base.html" not in printable.content


def test_an_observer_reads_but_cannot_post(web_charlie, incident):
    page = web_charlie.get(page_url(incident)).content.decode()
    assert "readonly" in page and ">Save</button>" not in page and ">Pin</button>" not in page
    entry = incident.timeline.first()
    for path, data in [
        (page_url(incident), {"summary": "x"}),
        (page_url(incident, "action-items/"), {"description": "x"}),
        (page_url(incident, f"timeline/{entry.pk}/"), {"action": "pin"}),
    ]:
        assert web_charlie.post(path, data).status_code == 403
    assert not Postmortem.objects.exists()


def test_posts_need_the_csrf_token(bob, incident):
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    assert client.post(page_url(incident), {"summary": "x"}).status_code == 403
    page = client.get(page_url(incident))
    token = page.cookies["csrftoken"].value
    response = client.post(page_url(incident), {"summary": "x", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Postmortem.objects.get().summary == "x"


def test_pages_need_login_and_an_unknown_incident_is_404(web_bob, incident):
    assert Client().get(page_url(incident))["Location"].startswith("/login/")
    assert web_bob.get("/incidents/999999/postmortem/").status_code == 404
    assert web_bob.get("/incidents/999999/postmortem/export.md").status_code == 404


def test_the_editor_renders_a_long_timeline_in_a_fixed_number_of_queries(
    web_bob, incident, bob, charlie, django_assert_max_num_queries
):
    postmortem = get_or_start_postmortem(incident, bob)
    for i in range(60):  # pages to two people, each sent and delivered, plus notes and noise
        person = (bob, charlie)[i % 2]
        for status in ("sent", "delivered"):
            entry = timeline.record(
                incident,
                EntryKind.PAGE,
                message=f"page {i} {status}",
                source=Source.SYSTEM,
                data={"page": 1000 + i, "person": person.pk, "channel": "sms", "status": status},
            )
        annotate_entry(postmortem, entry, by=bob, annotation=f"note {i}")
        services.add_note(incident, text=f"note {i}", by=bob, source=Source.CHAT)
        timeline.record(incident, EntryKind.ALERT_REPEATED, message="again", source=Source.ALERT)
        add_action_item(postmortem, description=f"item {i}", owner=bob, by=bob)
    # session, user, incident, report (postmortem, timeline, curations, items, names), owners
    with django_assert_max_num_queries(10):
        response = web_bob.get(page_url(incident))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<li id="item-') == 60
    assert "Page 1 of 2" in html  # 184 curated rows, 100 a page
    with django_assert_max_num_queries(10):
        all_rows = web_bob.get(page_url(incident, "?show=all&page=3"))
    assert "Page 3 of 3" in all_rows.content.decode()
    with django_assert_max_num_queries(9):
        assert web_bob.get(page_url(incident, "export.json")).status_code == 200
