"""The postmortem API: fields, action items, curation and exports, as responders and observers."""

from __future__ import annotations

import pytest

from accounts.models import AuditEntry
from incidents import services
from incidents.models import ActionItem, EntryKind, Incident, Source, TimelineEntry
from tests.helpers.api import API, assert_error, open_incident


@pytest.fixture
def incident(service, bob) -> Incident:
    incident = open_incident(service, "Disk full on db-1", severity=1)
    services.acknowledge_incident(incident, by=bob, source=Source.SMS)
    services.add_note(incident, text="db-1 at 99%", by=bob, source=Source.CHAT)
    services.resolve_incident(incident, by=bob, source=Source.CHAT)
    return incident


def url(incident: Incident, rest: str = "") -> str:
    return f"{API}incidents/{incident.number}/postmortem/{rest}"


def test_an_unstarted_postmortem_reads_empty_with_its_links(as_charlie, incident):
    response = as_charlie.get(url(incident))
    assert response.status_code == 200
    n = incident.number
    assert response.json() == {
        "incident": n,
        "started": False,
        "summary": "",
        "impact": "",
        "root_cause": "",
        "contributing_factors": "",
        "created_at": None,
        "updated_at": None,
        "updated_by": None,
        "links": {
            "web": f"/incidents/{n}/postmortem/",
            "markdown": f"/incidents/{n}/postmortem/export.md",
            "json": f"/incidents/{n}/postmortem/export.json",
            "print": f"/incidents/{n}/postmortem/print/",
            "api_export": f"/api/v1/incidents/{n}/postmortem/export/",
        },
    }


def test_patch_starts_the_postmortem_and_keeps_other_fields_put_empties_them(as_bob, incident):
    response = as_bob.patch(url(incident), {"summary": "Disk full\n\non db-1 "}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["started"], body["summary"], body["updated_by"]) == (
        True,
        "Disk full\n\non db-1 ",
        "bob",
    )
    as_bob.patch(url(incident), {"impact": "Orders failed"}, format="json")
    body = as_bob.get(url(incident)).json()
    assert (body["summary"], body["impact"]) == ("Disk full\n\non db-1 ", "Orders failed")
    body = as_bob.put(url(incident), {"root_cause": "WAL"}, format="json").json()
    assert (body["summary"], body["impact"], body["root_cause"]) == ("", "", "WAL")
    assert AuditEntry.objects.filter(object_type="incidents.postmortem").count() == 4


def test_an_observer_cannot_write_and_a_bad_field_is_a_400(as_bob, as_charlie, incident):
    assert_error(
        as_charlie.patch(url(incident), {"summary": "x"}, format="json"),
        403,
        "This needs the responder role",
    )
    assert_error(as_bob.patch(url(incident), {"summary": 5 * "x" * 20_000}, format="json"), 400)
    assert_error(as_bob.get(f"{API}incidents/999999/postmortem/"), 404, "no incident #999999")


def test_action_items_are_created_listed_changed_and_deleted(as_bob, as_charlie, incident, bob):
    created = as_bob.post(
        url(incident, "action-items/"),
        {"description": "Alert at 80%", "owner": "bob", "due": "2025-03-08"},
        format="json",
    )
    assert created.status_code == 201, created.content
    item = created.json()
    assert item == {
        "id": item["id"],
        "incident": incident.number,
        "description": "Alert at 80%",
        "owner": "bob",
        "due": "2025-03-08",
        "done": False,
        "order": 1,
    }
    listed = as_charlie.get(url(incident, "action-items/")).json()
    assert [i["description"] for i in listed] == ["Alert at 80%"]
    one = f"{API}action-items/{item['id']}/"
    patched = as_bob.patch(one, {"done": True, "owner": None}, format="json").json()
    assert (patched["done"], patched["owner"], patched["due"]) == (True, None, "2025-03-08")
    assert_error(as_bob.patch(one, {"owner": "nobody"}, format="json"), 400, "owner")
    assert_error(as_charlie.delete(one), 403)
    assert as_bob.delete(one).status_code == 204
    assert not ActionItem.objects.exists()
    assert_error(as_bob.get(one), 404, f"no action item {item['id']}")


def test_curation_pins_hides_and_annotates_entries_of_this_incident_only(as_bob, incident, service):
    note = incident.timeline.get(kind=EntryKind.NOTE)
    response = as_bob.post(
        url(incident, "timeline/"), {"entry": note.pk, "hidden": True}, format="json"
    )
    assert response.json() == {"entry": note.pk, "pinned": False, "hidden": True, "annotation": ""}
    response = as_bob.post(
        url(incident, "timeline/"), {"entry": note.pk, "annotation": "noise"}, format="json"
    )
    assert response.json() == {
        "entry": note.pk,
        "pinned": False,
        "hidden": True,
        "annotation": "noise",
    }
    assert TimelineEntry.objects.filter(pk=note.pk).exists()
    other = open_incident(service, "Elsewhere")
    foreign = other.timeline.get()
    assert_error(
        as_bob.post(url(incident, "timeline/"), {"entry": foreign.pk}, format="json"),
        400,
        f"Entry {foreign.pk} is not on incident #{incident.number}'s timeline.",
    )


def test_exports_answer_in_each_format_with_its_content_type(as_charlie, incident):
    markdown = as_charlie.get(url(incident, "export/?format=markdown"))
    assert markdown.status_code == 200
    assert markdown["Content-Type"] == "text/markdown; charset=utf-8"
    assert markdown.content.decode().startswith(
        f"# Postmortem: #{incident.number} Disk full on db\\-1\n"  # the title escaped
    )
    data = as_charlie.get(url(incident, "export/?format=json"))
    assert data["Content-Type"] == "application/json"
    body = data.json()
    assert [e["kind"] for e in body["timeline"]] == ["opened", "acknowledged", "note", "resolved"]
    assert body["incident"]["acknowledged_by"] == "bob"
    assert body["incident"]["acknowledged_via"] == "sms"
    assert all(e["at"].endswith("Z") for e in body["timeline"])
    html = as_charlie.get(url(incident, "export/?format=html"))
    assert html["Content-Type"] == "text/html; charset=utf-8"
    assert b"@media print" in html.content
    assert "attachment" not in html.get("Content-Disposition", "")


def test_an_export_without_format_follows_the_accept_header(as_charlie, incident):
    assert as_charlie.get(url(incident, "export/"))["Content-Type"] == "application/json"
    md = as_charlie.get(url(incident, "export/"), HTTP_ACCEPT="text/markdown")
    assert md["Content-Type"].startswith("text/markdown")


def test_an_unknown_export_format_is_a_400_naming_the_allowed_ones(as_charlie, incident):
    assert_error(
        as_charlie.get(url(incident, "export/?format=pdf")),
        400,
        "format must be one of markdown, json, html, not 'pdf'.",
    )
