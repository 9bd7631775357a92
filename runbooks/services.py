"""Which runbook an incident gets, and what an incident's alerts say (labels, annotations).

Matching itself is a pure function of plain values (`select_runbook`: candidates in order and
the alerts' label sets); `matching_runbook(incident)` gathers those values for an incident.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from django.db.models import Q

from accounts.models import Role, User
from alerts.matchers import Matcher, MatcherError, all_match, matchers_from_json
from alerts.models import Alert
from core.compiled import Lookup
from incidents.models import Incident
from runbooks.models import Runbook
from runbooks.templating import Context

log = logging.getLogger(__name__)

# Enough alerts to match against; a storm of thousands carries the same few label sets.
MAX_LABEL_SETS = 500


def may_read_payloads(user: User) -> bool:
    """Whether `user` may read what actions send and receive: payload templates, request
    bodies and response excerpts, which often carry tokens. Responders and admins (who run
    and configure actions) may; observers may not."""
    return user.has_role(Role.RESPONDER)


def label_sets(incident: Incident) -> list[dict[str, str]]:
    """Return the distinct label sets of the incident's alerts, oldest alert first."""
    rows = (
        Alert.objects.filter(incident=incident)
        .order_by("first_seen", "id")
        .values_list("labels", flat=True)[:MAX_LABEL_SETS]
    )
    return distinct_label_sets(rows)


def distinct_label_sets(labels_of_alerts: Iterable[Any]) -> list[dict[str, str]]:
    """Return the distinct label sets among alerts' labels, in order, as strings."""
    seen: set[str] = set()
    sets = []
    for labels in labels_of_alerts:
        if not isinstance(labels, dict):
            continue
        key = json.dumps(labels, sort_keys=True)
        if key not in seen:
            seen.add(key)
            sets.append({str(k): str(v) for k, v in labels.items()})
    return sets


def first_alert(incident: Incident) -> Alert | None:
    """Return the incident's first alert (the one that opened it, usually)."""
    return Alert.objects.filter(incident=incident).order_by("first_seen", "id").first()


def runbook_matchers(runbook: Runbook) -> list[Matcher] | None:
    """Return the runbook's matchers, or None when they cannot be read (it then never matches)."""
    try:
        return matchers_from_json(runbook.matchers or [])
    except MatcherError as exc:
        log.warning("runbook %s has unreadable matchers: %s", runbook.pk, exc)
        return None


def select_runbook(
    candidates: Iterable[Runbook], service_id: int | None, labels: list[dict[str, str]]
) -> Runbook | None:
    """Return the first runbook that fits: the service's own runbooks by position, then the
    any-service ones by position; a runbook fits when one alert's labels satisfy all of its
    matchers (a runbook without matchers fits every incident of its service)."""
    ordered = sorted(
        (r for r in candidates if r.service_id in (service_id, None)),
        key=lambda r: (r.service_id is None, r.position, r.pk or 0),
    )
    for runbook in ordered:
        matchers = runbook_matchers(runbook)
        if matchers is None:
            continue
        if not matchers or any(all_match(matchers, one) for one in labels):
            return runbook
    return None


def candidate_runbooks(service_id: int) -> list[Runbook]:
    """Return the runbooks that may apply to incidents of a service (its own and any-service)."""
    return _CANDIDATES.instances(service_id)


# Every new incident's opening post asks: compiled once (core.compiled).
_CANDIDATES = Lookup(
    lambda service: Runbook.objects.filter(Q(service_id=service) | Q(service__isnull=True)),
    takes=(int,),
)


def matching_runbook(
    incident: Incident, labels: list[dict[str, str]] | None = None
) -> Runbook | None:
    """Return the runbook shown for `incident`, or None when none fits. `labels`: the label
    sets of all its alerts (`distinct_label_sets`), if the caller has read them already."""
    if labels is None:
        labels = label_sets(incident)
    return select_runbook(candidate_runbooks(incident.service_id), incident.service_id, labels)


def payload_context(incident: Incident, user: User | None = None) -> Context:
    """Return what an action's payload placeholders may name for `incident`, run by `user`."""
    alert = first_alert(incident)
    labels = alert.labels if alert is not None and isinstance(alert.labels, dict) else {}
    annotations = (
        alert.annotations if alert is not None and isinstance(alert.annotations, dict) else {}
    )
    return Context(
        incident={
            "number": incident.number,
            "title": incident.title,
            "severity": incident.severity,
            "urgency": incident.urgency,
            "status": incident.status,
            "service": incident.service.name,
        },
        labels={str(k): str(v) for k, v in labels.items()},
        annotations={str(k): str(v) for k, v in annotations.items()},
        run={"requested_by": user.get_username()} if user is not None else {},
    )
