"""Compute the insights: volume per service, response times, pages per person, noisy alerts.

Each function aggregates in SQL over a bounded window of weeks and returns plain dataclasses,
one value per week of the window (weeks start on Monday, 00:00 UTC). None of them reads the
timeline table: incidents carry their own triggered/acknowledged/resolved times, alerts their
occurrence counts, and pages their send times.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    Q,
    Sum,
    When,
)
from django.db.models.functions import ExtractHour, Mod, TruncWeek
from django.db.models.lookups import LessThan
from django.utils import timezone

from accounts.models import User
from alerts.models import Alert
from incidents.models import Incident
from oncall.models import Page, PersonSettings

UTC = dt.UTC
WEEK_CHOICES = (4, 12, 26, 52)
DEFAULT_WEEKS = 12
# Night-time pages: sent at or after 22:00 or before 07:00 in the person's own time zone.
NIGHT_STARTS = 22
NIGHT_ENDS = 7
# Without percentile_cont (SQLite), medians are computed in Python over at most this many
# incidents; over more, they are left out rather than slow the page down.
PYTHON_MEDIAN_LIMIT = 2000


@dataclass(frozen=True)
class Period:
    """The weeks an insight covers: Mondays oldest first; `start` is the first at 00:00 UTC."""

    weeks: list[dt.date]
    start: dt.datetime
    end: dt.datetime

    def index(self, week: dt.datetime | dt.date) -> int | None:
        """Return the position of `week` (a Monday) in the period, or None outside it."""
        day = week.astimezone(UTC).date() if isinstance(week, dt.datetime) else week
        offset = (day - self.weeks[0]).days
        if offset < 0 or offset % 7:
            return None
        position = offset // 7
        return position if position < len(self.weeks) else None


def period_ending(now: dt.datetime | None = None, weeks: int = DEFAULT_WEEKS) -> Period:
    """Return the last `weeks` weeks up to `now`, the current (partial) week included."""
    now = (now or timezone.now()).astimezone(UTC)
    this_monday = now.date() - dt.timedelta(days=now.weekday())
    mondays = [this_monday - dt.timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    start = dt.datetime.combine(mondays[0], dt.time(), tzinfo=UTC)
    return Period(weeks=mondays, start=start, end=now)


def _zeros(period: Period) -> list[int]:
    return [0] * len(period.weeks)


# --- incidents and alerts per service --------------------------------------------------------


@dataclass
class ServiceVolume:
    """Incidents opened and alerts first seen for one service, one number per week."""

    service_id: int
    service: str
    incidents: list[int]
    alerts: list[int]

    @property
    def total_incidents(self) -> int:
        return sum(self.incidents)

    @property
    def total_alerts(self) -> int:
        return sum(self.alerts)


def volume_by_service(period: Period, *, service_id: int | None = None) -> list[ServiceVolume]:
    """Return incidents opened and alerts first seen per service per week, busiest first."""
    incidents = Incident.objects.filter(created_at__gte=period.start, created_at__lte=period.end)
    alerts = Alert.objects.filter(first_seen__gte=period.start, first_seen__lte=period.end)
    if service_id is not None:
        incidents = incidents.filter(service_id=service_id)
        alerts = alerts.filter(service_id=service_id)
    rows: dict[int, ServiceVolume] = {}

    def row(pk: int, name: str) -> ServiceVolume:
        if pk not in rows:
            rows[pk] = ServiceVolume(pk, name, _zeros(period), _zeros(period))
        return rows[pk]

    counted = (
        incidents.annotate(week=TruncWeek("created_at", tzinfo=UTC))
        .values("service_id", "service__name", "week")
        .annotate(n=Count("id"))
        .order_by()
    )
    for item in counted:
        if (i := period.index(item["week"])) is not None:
            row(item["service_id"], item["service__name"]).incidents[i] = item["n"]
    counted = (
        alerts.annotate(week=TruncWeek("first_seen", tzinfo=UTC))
        .values("service_id", "service__name", "week")
        .annotate(n=Count("id"))
        .order_by()
    )
    for item in counted:
        if (i := period.index(item["week"])) is not None:
            row(item["service_id"], item["service__name"]).alerts[i] = item["n"]
    return sorted(rows.values(), key=lambda r: (-r.total_incidents, -r.total_alerts, r.service))


# --- time to acknowledge and to resolve ------------------------------------------------------


class Median(Aggregate):
    """PostgreSQL's continuous median (it interpolates between the middle two, as Python does)."""

    function = "PERCENTILE_CONT"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()


@dataclass(frozen=True)
class ResponseWeek:
    """Incidents opened in one week and how fast they were acknowledged and resolved."""

    week: dt.date
    incidents: int
    acknowledged: int
    resolved: int
    mean_to_ack: dt.timedelta | None
    mean_to_resolve: dt.timedelta | None
    median_to_ack: dt.timedelta | None = None
    median_to_resolve: dt.timedelta | None = None


@dataclass(frozen=True)
class ResponseTimes:
    weeks: list[ResponseWeek]
    # False where the database has no percentile function and the window held too many
    # incidents to compute medians in Python.
    has_medians: bool = True


def _median(values: list[dt.timedelta]) -> dt.timedelta | None:
    return statistics.median(values) if values else None


def _has_percentiles() -> bool:
    """Return whether the database computes medians itself (PostgreSQL's percentile_cont)."""
    return connection.vendor == "postgresql"


def response_times(period: Period, *, service_id: int | None = None) -> ResponseTimes:
    """Return, per week opened, the mean (and median) time to acknowledge and to resolve.

    Time to acknowledge runs from the latest trigger (a re-trigger starts the clock again) to
    the acknowledgement; time to resolve from the incident's opening to its resolution.
    """
    incidents = Incident.objects.filter(created_at__gte=period.start, created_at__lte=period.end)
    if service_id is not None:
        incidents = incidents.filter(service_id=service_id)
    to_ack = ExpressionWrapper(F("acknowledged_at") - F("triggered_at"), DurationField())
    to_resolve = ExpressionWrapper(F("resolved_at") - F("created_at"), DurationField())
    aggregates = {
        "n": Count("id"),
        "acked": Count("acknowledged_at"),
        "resolved": Count("resolved_at"),
        "mean_ack": Avg(to_ack),
        "mean_resolve": Avg(to_resolve),
    }
    in_sql = _has_percentiles()
    if in_sql:
        aggregates |= {"median_ack": Median(to_ack), "median_resolve": Median(to_resolve)}
    counted = (
        incidents.annotate(week=TruncWeek("created_at", tzinfo=UTC))
        .values("week")
        .annotate(**aggregates)
        .order_by()
    )
    found = {i: item for item in counted if (i := period.index(item["week"])) is not None}
    medians: dict[int, tuple[dt.timedelta | None, dt.timedelta | None]] = {}
    has_medians = True
    if not in_sql and any(item["acked"] or item["resolved"] for item in found.values()):
        rows = list(
            incidents.filter(Q(acknowledged_at__isnull=False) | Q(resolved_at__isnull=False))
            .values_list("created_at", "triggered_at", "acknowledged_at", "resolved_at")
            .order_by()[: PYTHON_MEDIAN_LIMIT + 1]
        )
        has_medians = len(rows) <= PYTHON_MEDIAN_LIMIT
        if has_medians:
            acks: dict[int, list[dt.timedelta]] = defaultdict(list)
            resolves: dict[int, list[dt.timedelta]] = defaultdict(list)
            for created, triggered, acked, resolved in rows:
                day = created.astimezone(UTC).date()
                i = period.index(day - dt.timedelta(days=day.weekday()))
                if acked is not None:
                    acks[i].append(acked - triggered)
                if resolved is not None:
                    resolves[i].append(resolved - created)
            medians = {i: (_median(acks[i]), _median(resolves[i])) for i in found}
    weeks = []
    for i, monday in enumerate(period.weeks):
        item = found.get(i)
        if item is None:
            weeks.append(ResponseWeek(monday, 0, 0, 0, None, None))
            continue
        median_ack, median_resolve = (
            (item["median_ack"], item["median_resolve"]) if in_sql else medians.get(i, (None, None))
        )
        weeks.append(
            ResponseWeek(
                week=monday,
                incidents=item["n"],
                acknowledged=item["acked"],
                resolved=item["resolved"],
                mean_to_ack=item["mean_ack"],
                mean_to_resolve=item["mean_resolve"],
                median_to_ack=median_ack,
                median_to_resolve=median_resolve,
            )
        )
    return ResponseTimes(weeks=weeks, has_medians=has_medians)


# --- pages per person ------------------------------------------------------------------------


@dataclass
class PersonPages:
    """Pages sent to one person per week, and how many of them came at night."""

    person_id: int
    person: str
    time_zone: str
    pages: list[int]
    night: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.pages)

    @property
    def night_total(self) -> int:
        return sum(self.night)


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def pages_by_person(period: Period, *, service_id: int | None = None) -> list[PersonPages]:
    """Return pages sent per person per week, night-time ones counted apart, most paged first.

    A page counts once it was handed to a provider (it has a send time). Night is 22:00–07:00
    in the person's time zone (their on-call settings; UTC when they have none).
    """
    pages = Page.objects.filter(sent_at__gte=period.start, sent_at__lte=period.end)
    if service_id is not None:
        pages = pages.filter(incident__service_id=service_id)
    # The local hour is a CASE over the zones in use, keyed by person: the aggregate then joins
    # no other table (people's settings and names are two small queries of their own).
    zone_of: dict[int, str] = {}
    people_in: dict[str, list[int]] = defaultdict(list)
    for user_id, name in PersonSettings.objects.exclude(time_zone="UTC").values_list(
        "user_id", "time_zone"
    ):
        if _zone(name) is not None:
            zone_of[user_id] = name
            people_in[name].append(user_id)
    local_hour = Case(
        *(
            When(person_id__in=ids, then=ExtractHour("sent_at", tzinfo=_zone(name)))
            for name, ids in sorted(people_in.items())
        ),
        default=ExtractHour("sent_at", tzinfo=UTC),
        output_field=IntegerField(),
    )
    # Night is hour >= 22 or hour < 7; shifted by two hours it is one comparison, (hour + 2)
    # mod 24 < 9, so the CASE (a time zone conversion per row) is evaluated once, not twice.
    shifted = Mod(F("local_hour") + (24 - NIGHT_STARTS), 24)
    hours_of_night = 24 - NIGHT_STARTS + NIGHT_ENDS
    counted = (
        pages.alias(local_hour=local_hour)
        .alias(is_night=Case(When(LessThan(shifted, hours_of_night), then=1), default=0))
        .annotate(week=TruncWeek("sent_at", tzinfo=UTC))
        .values("person_id", "week")
        .annotate(n=Count("id"), night=Sum("is_night"))
        .order_by()
    )
    rows: dict[int, PersonPages] = {}
    for item in counted:
        i = period.index(item["week"])
        if i is None:
            continue
        pk = item["person_id"]
        if pk not in rows:
            zone = zone_of.get(pk, "UTC")
            rows[pk] = PersonPages(pk, "", zone, _zeros(period), _zeros(period))
        rows[pk].pages[i] = item["n"]
        rows[pk].night[i] = item["night"]
    if rows:
        names = User.objects.filter(pk__in=rows).values_list("pk", "username")
        for pk, username in names:
            rows[pk].person = username
    return sorted(rows.values(), key=lambda r: (-r.total, -r.night_total, r.person))


# --- the noisiest alerts ---------------------------------------------------------------------


@dataclass(frozen=True)
class NoisyAlert:
    """One alert fingerprint of one integration, and how often it fired in the period."""

    integration: str
    fingerprint: str
    summary: str
    occurrences: int  # notifications received, repeats included
    alerts: int  # separate firings (a resolved alert that fires again is a new one)
    incidents: int  # distinct incidents it was attached to
    last_seen: dt.datetime


def noisiest_alerts(
    period: Period, *, service_id: int | None = None, limit: int = 10
) -> list[NoisyAlert]:
    """Return the fingerprints seen in the period with the most occurrences, noisiest first."""
    alerts = Alert.objects.filter(last_seen__gte=period.start, last_seen__lte=period.end)
    if service_id is not None:
        alerts = alerts.filter(service_id=service_id)
    # COUNT(DISTINCT incident) here would make PostgreSQL sort every alert of the period by
    # fingerprint; it is counted below for the top fingerprints only.
    top = list(
        alerts.values("integration_id", "integration__name", "fingerprint")
        .annotate(occurrences=Sum("occurrences"), firings=Count("id"), latest=Max("last_seen"))
        .order_by("-occurrences", "-latest", "fingerprint")[:limit]
    )
    if not top:
        return []
    # Two more queries bounded by `limit`, narrowed by the fingerprint index: the incidents
    # each fingerprint was attached to, and the summary of its latest alert.
    ours = reduce(
        or_, (Q(integration_id=t["integration_id"], fingerprint=t["fingerprint"]) for t in top)
    )
    incidents = {
        (item["integration_id"], item["fingerprint"]): item["n"]
        for item in alerts.filter(ours)
        .values("integration_id", "fingerprint")
        .annotate(n=Count("incident_id", distinct=True))
        .order_by()
    }
    latest = reduce(
        or_,
        (
            Q(
                integration_id=t["integration_id"],
                fingerprint=t["fingerprint"],
                last_seen=t["latest"],
            )
            for t in top
        ),
    )
    summaries = {
        (pk, fingerprint): summary
        for pk, fingerprint, summary in alerts.filter(latest)
        .order_by("id")
        .values_list("integration_id", "fingerprint", "summary")
    }
    return [
        NoisyAlert(
            integration=t["integration__name"],
            fingerprint=t["fingerprint"],
            summary=summaries.get((t["integration_id"], t["fingerprint"]), ""),
            occurrences=t["occurrences"],
            alerts=t["firings"],
            incidents=incidents.get((t["integration_id"], t["fingerprint"]), 0),
            last_seen=t["latest"],
        )
        for t in top
    ]
