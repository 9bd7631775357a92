"""A postmortem's action items: what is to be done after the incident, by whom and when.

Each change is recorded on the audit log; a deleted item lives on there.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import transaction

from accounts.audit import CREATED, DELETED, UPDATED, diff, record_change, snapshot
from accounts.models import User
from incidents.models import ActionItem, Postmortem
from incidents.postmortems import PostmortemError, check_text

DESCRIPTION_MAX = 1_000


def _item_values(description: Any, owner: User | None, due: date | None) -> str:
    text = check_text(description, "The description", DESCRIPTION_MAX).strip()
    if not text:
        raise PostmortemError("An action item needs a description.")
    if owner is not None and not owner.is_active:
        raise PostmortemError(f"{owner.get_username()} is deactivated.")
    if due is not None and not isinstance(due, date):
        raise PostmortemError("The due date must be a date.")
    return text


@transaction.atomic
def add_action_item(
    postmortem: Postmortem,
    *,
    description: str,
    owner: User | None = None,
    due: date | None = None,
    by: User | None,
) -> ActionItem:
    """Add an action item at the end of the postmortem's list."""
    text = _item_values(description, owner, due)
    last = postmortem.action_items.order_by("-order").values_list("order", flat=True).first()
    item = ActionItem.objects.create(
        postmortem=postmortem,
        description=text,
        owner=owner,
        due=due,
        order=(last or 0) + 1,
    )
    record_change(by, CREATED, item, snapshot(item))
    return item


_UNSET: Any = object()


@transaction.atomic
def update_action_item(
    item: ActionItem,
    *,
    by: User | None,
    description: str = _UNSET,
    owner: User | None = _UNSET,
    due: date | None = _UNSET,
    done: bool = _UNSET,
    order: int = _UNSET,
) -> ActionItem:
    """Change an action item; fields not given stay as they are."""
    before = snapshot(item)
    text = _item_values(
        item.description if description is _UNSET else description,
        item.owner if owner is _UNSET else owner,
        item.due if due is _UNSET else due,
    )
    item.description = text
    if owner is not _UNSET:
        item.owner = owner
    if due is not _UNSET:
        item.due = due
    if done is not _UNSET:
        item.done = bool(done)
    if order is not _UNSET:
        item.order = int(order)
    item.save()
    record_change(by, UPDATED, item, diff(before, snapshot(item)))
    return item


@transaction.atomic
def delete_action_item(item: ActionItem, *, by: User | None) -> None:
    """Delete an action item (the audit log keeps what it said)."""
    before, pk = snapshot(item), item.pk
    item.delete()
    record_change(by, DELETED, item, before, object_id=pk)
