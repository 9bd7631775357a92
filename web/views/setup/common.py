"""What the setup pages share: the roles, the audit trail of a form's save, positions."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.paginator import Paginator
from django.db import models, transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import render

from accounts.audit import CREATED, DELETED, UPDATED, diff, record_change, snapshot
from accounts.models import Role

# The same roles as the API: everyone reads the configuration, admins change it
# (silences: responders, as in alerts/api.py SilenceViewSet.write_role).
READ = Role.OBSERVER
WRITE = Role.ADMIN


def save_audited(user, obj: models.Model, before: dict | None, **save_kwargs) -> None:
    """Save `obj` and record who created or changed it (`before`: its snapshot, None if new)."""
    with transaction.atomic():
        obj.save(**save_kwargs)
        if before is None:
            record_change(user, CREATED, obj, snapshot(obj))
        else:
            record_change(user, UPDATED, obj, diff(before, snapshot(obj)))


def delete_audited(user, obj: models.Model) -> None:
    """Delete `obj` and record who did."""
    with transaction.atomic():
        before, pk = snapshot(obj), obj.pk
        obj.delete()
        record_change(user, DELETED, obj, before, object_id=pk)


def move(user, items: Sequence[models.Model], pk: int, direction: str) -> bool:
    """Move the item `pk` one place up or down in `items` (in their order), renumbering
    `position` 0..n-1 and auditing each change; return whether it moved."""
    ordered = list(items)
    index = next((i for i, item in enumerate(ordered) if item.pk == pk), None)
    if index is None:
        return False
    target = index - 1 if direction == "up" else index + 1
    if direction not in ("up", "down") or not 0 <= target < len(ordered):
        return False
    ordered[index], ordered[target] = ordered[target], ordered[index]
    changed = []
    with transaction.atomic():
        for position, item in enumerate(ordered):
            if item.position != position:
                record_change(user, UPDATED, item, {"position": [item.position, position]})
                item.position = position
                changed.append(item)
        type(ordered[0]).objects.bulk_update(changed, ["position"])
    return True


PAGE_SIZE = 50


def page_of(request, queryset, per_page: int = PAGE_SIZE):
    """Return the requested page (?page=) of `queryset`, PAGE_SIZE rows at a time."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def count_of(model: type[models.Model], field: str, **filters) -> Coalesce:
    """Return a subquery annotation counting `model` rows whose `field` is the outer row."""
    counted = (
        model.objects.filter(**{field: OuterRef("pk")}, **filters)
        .order_by()
        .values(field)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=models.IntegerField()), 0)


def render_page(request, template: str, context: dict, status: int = 200):
    """Render a setup page, telling it what the viewer may change."""
    context = {
        **context,
        "can_edit": request.user.has_role(WRITE),
        "can_silence": request.user.has_role(Role.RESPONDER),
    }
    return render(request, template, context, status=status)
