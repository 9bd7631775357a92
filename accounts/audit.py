"""The audit log: who changed which schedule, override, policy, integration or rule, and when.

Views call `record_change` after each write, in the write's transaction, with a `snapshot` of
the object from before and after: an update records only the fields that changed, as
`{"field": [old, new]}`. Secrets (tokens, code hashes) never enter the log; that one changed is
recorded, not its value.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction

from accounts.models import AuditEntry

CREATED, UPDATED, DELETED = "created", "updated", "deleted"
ACTIONS = (CREATED, UPDATED, DELETED)
SECRET_FIELDS = frozenset(
    {"token", "token_hash", "ical_token", "hmac_secret", "verification_code_hash", "password"}
)
HIDDEN = "[secret]"
# Fields that say nothing about a configuration change.
NOISE_FIELDS = frozenset({"created_at", "last_ping_at", "heartbeat_down", "last_used_at"})


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def snapshot(obj: models.Model, *, extra: dict | None = None) -> dict[str, Any]:
    """Return the object's fields as JSON values: foreign keys as ids, many-to-many as id lists.

    `extra` adds values that live elsewhere (a layer's participants, a policy's steps).
    """
    values: dict[str, Any] = {}
    for f in obj._meta.concrete_fields:
        if f.primary_key or f.name in NOISE_FIELDS:
            continue
        values[f.name] = HIDDEN if f.name in SECRET_FIELDS else f.value_from_object(obj)
    if obj.pk is not None:
        for f in obj._meta.many_to_many:
            values[f.name] = sorted(getattr(obj, f.name).values_list("pk", flat=True))
    values.update(extra or {})
    return _json_safe(values)


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
    """Return `{field: [old, new]}` for each field whose value differs (secrets: that it did)."""
    changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            changes[name] = [old, new]
    return changes


def _label(obj: models.Model) -> str:
    return str(obj._meta.verbose_name)


def record_change(
    actor,
    action: str,
    obj: models.Model,
    changes: dict | None = None,
    *,
    summary: str = "",
    object_id: object = None,
) -> AuditEntry | None:
    """Write one audit entry for `actor` (a user, or None for Muster itself) doing `action` to
    `obj`. For an update, `changes` is a `diff`; an update that changed nothing writes nothing.
    For a creation or deletion it is the object's `snapshot`.

    After `obj.delete()`, which forgets the primary key, pass the key as `object_id`.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    changes = _json_safe(changes or {})
    if action == UPDATED and not changes:
        return None
    actor = actor if getattr(actor, "is_authenticated", False) else None
    who = actor.get_username() if actor is not None else "Muster"
    if not summary:
        summary = f"{who} {action} {_label(obj)} {obj}"
        if action == UPDATED:
            summary += f": {', '.join(changes)}"
    return AuditEntry.objects.create(
        actor=actor,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk if object_id is None else object_id),
        summary=summary[:2000],
        changes=changes,
    )


class Audited:
    """A DRF ModelViewSet mixin: record every create, update and delete in the audit log.

    `audit_extra(instance)` may add values kept outside the row (participants, steps).
    """

    def audit_extra(self, instance) -> dict:
        return {}

    def _snapshot(self, instance) -> dict:
        return snapshot(instance, extra=self.audit_extra(instance))

    @transaction.atomic
    def perform_create(self, serializer):
        super().perform_create(serializer)
        instance = serializer.instance
        record_change(self.request.user, CREATED, instance, self._snapshot(instance))

    @transaction.atomic
    def perform_update(self, serializer):
        before = self._snapshot(serializer.instance)
        super().perform_update(serializer)
        instance = serializer.instance
        record_change(self.request.user, UPDATED, instance, diff(before, self._snapshot(instance)))

    @transaction.atomic
    def perform_destroy(self, instance):
        before, pk = self._snapshot(instance), instance.pk
        super().perform_destroy(instance)
        record_change(self.request.user, DELETED, instance, before, object_id=pk)
