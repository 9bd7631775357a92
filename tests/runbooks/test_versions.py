"""Every change to a runbook keeps a version: who, when, and what it said."""

from __future__ import annotations

from accounts.models import AuditEntry
from runbooks.models import Runbook, RunbookVersion
from tests.helpers.api import API


def test_creating_keeps_version_one_with_its_author(make_runbook, alice, service):
    book = make_runbook("Disk full", service=service, body="v1 text")
    (version,) = book.versions.all()
    assert (version.number, version.title, version.body, version.author) == (
        1,
        "Disk full",
        "v1 text",
        alice,
    )
    assert version.service == service
    assert book.version == 1


def test_each_change_is_a_new_version_by_whoever_saved_it(make_runbook, alice, bob):
    book = make_runbook(body="first")
    book.body = "second"
    book.save(author=bob)
    book.matchers = [{"label": "team", "op": "=", "value": "db"}]
    book.save(author=alice)
    versions = list(book.versions.order_by("number"))
    assert [(v.number, v.body, v.author.username) for v in versions] == [
        (1, "first", "alice"),
        (2, "second", "bob"),
        (3, "second", "alice"),
    ]
    assert versions[2].matchers == [{"label": "team", "op": "=", "value": "db"}]
    book.refresh_from_db()
    assert book.version == 3


def test_a_save_that_changes_nothing_versioned_keeps_no_version(make_runbook, bob):
    book = make_runbook()
    book.position = 7  # ordering, not content
    book.save(author=bob)
    book.save(author=bob)
    assert book.versions.count() == 1
    book.title = "Renamed"
    book.save(update_fields=["title"], author=bob)
    book.refresh_from_db()
    assert (book.version, book.versions.count()) == (2, 2)


def test_a_save_without_an_author_is_kept_as_muster(db):
    book = Runbook(title="Imported")
    book.save()
    assert book.versions.get().author is None


def test_updates_through_the_api_are_versioned_and_audited(as_alice, alice):
    created = as_alice.post(
        API + "runbooks/", {"title": "Disk full", "body": "# One"}, format="json"
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["version"] == 1
    changed = as_alice.patch(API + f"runbooks/{pk}/", {"body": "# Two"}, format="json")
    assert changed.json()["version"] == 2
    history = as_alice.get(API + f"runbooks/{pk}/versions/").json()["results"]
    assert [(v["number"], v["body"], v["author"]) for v in history] == [
        (2, "# Two", "alice"),
        (1, "# One", "alice"),
    ]
    entries = AuditEntry.objects.filter(object_type="runbooks.runbook", object_id=str(pk))
    assert [e.action for e in entries.order_by("id")] == ["created", "updated"]
    update = entries.get(action="updated")
    assert update.changes["body"] == ["# One", "# Two"]
    assert update.actor == alice
    assert "updated_at" not in update.changes


def test_deleting_a_runbook_takes_its_history_with_it(make_runbook):
    book = make_runbook()
    book.delete()
    assert not RunbookVersion.objects.exists()
