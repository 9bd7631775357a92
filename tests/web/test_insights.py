"""Insights: each computation against fixed data with exact numbers, and the page that shows them.

"Now" is Wednesday 18 March 2026, 12:00 UTC; four weeks are then the weeks of Monday 23 Feb,
2, 9 and 16 March. The United States moved to summer time on Sunday 8 March 2026, which the
night-time pages of alice (in New York) cross.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

from alerts.models import Alert, AlertStatus, Integration, Kind
from incidents.models import Incident, Service, Status
from oncall.models import Page, PageStatus, PersonSettings
from web import charts, insights
from web.insights import (
    NoisyAlert,
    noisiest_alerts,
    pages_by_person,
    period_ending,
    response_times,
    volume_by_service,
)
from web.views.insights import format_duration

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 18, 12, 0, tzinfo=UTC)
FEB23, MAR2, MAR9, MAR16 = (
    dt.date(2026, 2, 23),
    dt.date(2026, 3, 2),
    dt.date(2026, 3, 9),
    dt.date(2026, 3, 16),
)
MIN = dt.timedelta(minutes=1)


def at(day: int, hour: int = 0, minute: int = 0, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _now():
    with time_machine.travel(NOW, tick=False):
        yield


def make_incident(service, number, opened, *, triggered=None, acked=None, resolved=None):
    status = Status.RESOLVED if resolved else Status.ACKNOWLEDGED if acked else Status.TRIGGERED
    incident = Incident.objects.create(
        number=number,
        title=f"incident {number}",
        service=service,
        status=status,
        triggered_at=triggered or opened,
        acknowledged_at=acked,
        resolved_at=resolved,
    )
    # created_at is set on insert; the incident opened at `opened`.
    Incident.objects.filter(pk=incident.pk).update(created_at=opened)
    incident.created_at = opened
    return incident


def make_alert(integration, fingerprint, first_seen, last_seen, occurrences, incident, **fields):
    return Alert.objects.create(
        integration=integration,
        service=integration.service,
        fingerprint=fingerprint,
        status=fields.pop("status", AlertStatus.RESOLVED),
        summary=fields.pop("summary", f"{fingerprint} summary"),
        first_seen=first_seen,
        last_seen=last_seen,
        occurrences=occurrences,
        incident=incident,
        **fields,
    )


def make_page(person, incident, sent_at, *, status=PageStatus.DELIVERED):
    return Page.objects.create(
        incident=incident,
        person=person,
        channel="sms",
        status=status,
        send_after=sent_at or at(5),
        sent_at=sent_at,
    )


@pytest.fixture
def payments(db) -> Service:
    return Service.objects.create(name="payments")


@pytest.fixture
def incidents(service, payments) -> dict[str, Incident]:
    """Incidents of checkout (`service`) and payments with known response times."""
    return {
        # Before the four weeks (Sunday 22 Feb, 23:59): counted only over longer periods.
        "old": make_incident(service, 100, at(22, 23, 59, month=2), acked=at(23, 0, 9, month=2)),
        # Week of 2 March: acked after 4, 10 and 6 minutes; resolved after 60 and 120.
        "i1": make_incident(service, 1, at(2, 10), acked=at(2, 10, 4), resolved=at(2, 11)),
        "i2": make_incident(service, 2, at(4, 23), acked=at(4, 23, 10), resolved=at(5, 1)),
        "i3": make_incident(payments, 3, at(8, 23, 59), acked=at(9, 0, 5)),
        # Week of 9 March: i4 opened at the week's first instant and was re-triggered 30 minutes
        # later (acked 2 minutes after that, resolved 3 hours after opening); i5 auto-resolved.
        "i4": make_incident(
            service, 4, at(9), triggered=at(9, 0, 30), acked=at(9, 0, 32), resolved=at(9, 3)
        ),
        "i5": make_incident(service, 5, at(10, 8), resolved=at(10, 8, 30)),
        # Week of 16 March: open, not acknowledged.
        "i6": make_incident(payments, 6, at(16, 8)),
    }


@pytest.fixture
def alerts(incidents, service, payments) -> None:
    checkout_am = Integration.objects.create(
        name="am-checkout", kind=Kind.ALERTMANAGER, service=service
    )
    payments_gf = Integration.objects.create(
        name="gf-payments", kind=Kind.GRAFANA, service=payments
    )
    make_alert(
        checkout_am, "fp-cpu", at(2, 10), at(3), 5, incidents["i1"], summary="CPU high on web-1"
    )
    make_alert(
        checkout_am, "fp-cpu", at(9), at(9, 6), 7, incidents["i4"],
        summary="CPU high on web-2", status=AlertStatus.FIRING,
    )  # fmt: skip
    make_alert(checkout_am, "fp-disk", at(4, 23), at(17), 3, incidents["i2"])
    make_alert(payments_gf, "fp-latency", at(8, 23, 59), at(16, 9), 9, incidents["i3"])
    # Last seen before the four weeks: only in longer periods.
    make_alert(checkout_am, "fp-old", at(10, month=2), at(12, month=2), 100, incidents["old"])


@pytest.fixture
def pages(incidents, alice, bob, charlie) -> None:
    """alice in New York, bob in UTC (no settings), charlie in India (UTC+05:30)."""
    PersonSettings.objects.create(user=alice, time_zone="America/New_York")
    PersonSettings.objects.create(user=charlie, time_zone="Asia/Kolkata")
    i1, i3, i4, i6 = incidents["i1"], incidents["i3"], incidents["i4"], incidents["i6"]
    # alice, payments, week of 2 March (EST, UTC-5): 07:00 day, 22:00 night, 22:30 night.
    make_page(alice, i3, at(2, 12))
    make_page(alice, i3, at(3, 3))
    make_page(alice, i3, at(4, 3, 30))
    # alice, checkout, week of 9 March (EDT, UTC-4): 22:30 night, 06:30 night, 07:30 day
    # (11:30 UTC would have been 06:30, night, before summer time).
    make_page(alice, i4, at(10, 2, 30))
    make_page(alice, i4, at(10, 10, 30))
    make_page(alice, i4, at(10, 11, 30))
    # bob, checkout, UTC: 22:00 night, 06:59 night, 07:00 day; 12:00 day; 23:30 night.
    make_page(bob, i1, at(2, 22))
    make_page(bob, i1, at(3, 6, 59))
    make_page(bob, i1, at(3, 7))
    make_page(bob, i1, at(9, 12))
    make_page(bob, i1, at(17, 23, 30))
    make_page(bob, i1, None, status=PageStatus.CANCELLED)  # never sent: not a page received
    make_page(bob, i1, at(20, 23, month=2))  # before the period
    # charlie, payments, IST: 22:30 night, 06:30 night, 07:00 day.
    make_page(charlie, i6, at(16, 17))
    make_page(charlie, i6, at(16, 1))
    make_page(charlie, i6, at(16, 1, 30))


# --- the period ------------------------------------------------------------------------------


def test_period_is_the_last_weeks_from_monday_utc_including_this_one():
    period = period_ending(weeks=4)
    assert period.weeks == [FEB23, MAR2, MAR9, MAR16]
    assert period.start == at(23, month=2)
    assert period.end == NOW
    assert period.index(at(9)) == 2
    assert period.index(MAR16) == 3
    assert period.index(dt.date(2026, 2, 16)) is None
    assert period.index(dt.date(2026, 3, 23)) is None


def test_period_on_a_monday_at_midnight_starts_a_new_week():
    period = period_ending(at(23), weeks=12)
    assert len(period.weeks) == 12
    assert period.weeks[-1] == dt.date(2026, 3, 23)
    assert period.weeks[0] == dt.date(2026, 1, 5)


# --- volume ----------------------------------------------------------------------------------


def test_incidents_and_alerts_per_service_per_week(alerts):
    rows = volume_by_service(period_ending(weeks=4))
    assert [(r.service, r.incidents, r.alerts) for r in rows] == [
        ("checkout", [0, 2, 2, 0], [0, 2, 1, 0]),
        ("payments", [0, 1, 0, 1], [0, 1, 0, 0]),
    ]
    assert (rows[0].total_incidents, rows[0].total_alerts) == (4, 3)


def test_volume_over_longer_periods_includes_older_weeks(alerts):
    rows = volume_by_service(period_ending(weeks=12))
    checkout = rows[0]
    assert checkout.service == "checkout"
    # 16 Feb: the old incident (Sunday 22nd); 9 Feb: the old alert (10th).
    assert checkout.incidents == [0] * 6 + [0, 1, 0, 2, 2, 0]
    assert checkout.alerts == [0] * 6 + [1, 0, 0, 2, 1, 0]


def test_volume_filtered_by_service(alerts, payments):
    rows = volume_by_service(period_ending(weeks=4), service_id=payments.id)
    assert [(r.service, r.incidents, r.alerts) for r in rows] == [
        ("payments", [0, 1, 0, 1], [0, 1, 0, 0])
    ]


# --- response times --------------------------------------------------------------------------


@pytest.mark.parametrize("medians", ["database's", "python"])
def test_mean_and_median_time_to_acknowledge_and_resolve_per_week(incidents, monkeypatch, medians):
    if medians == "python":  # SQLite's path, taken on any database
        monkeypatch.setattr(insights, "_has_percentiles", lambda: False)
    times = response_times(period_ending(weeks=4))
    assert times.has_medians
    feb23, mar2, mar9, mar16 = times.weeks
    assert feb23 == insights.ResponseWeek(FEB23, 0, 0, 0, None, None, None, None)
    assert mar2 == insights.ResponseWeek(
        week=MAR2,
        incidents=3,
        acknowledged=3,
        resolved=2,
        mean_to_ack=dt.timedelta(minutes=6, seconds=40),  # (4 + 10 + 6) / 3
        mean_to_resolve=90 * MIN,  # (60 + 120) / 2
        median_to_ack=6 * MIN,
        median_to_resolve=90 * MIN,
    )
    # i4's acknowledgement counts from its re-trigger (2 min); its resolution from opening.
    assert mar9 == insights.ResponseWeek(MAR9, 2, 1, 2, 2 * MIN, 105 * MIN, 2 * MIN, 105 * MIN)
    assert mar16 == insights.ResponseWeek(MAR16, 1, 0, 0, None, None, None, None)


def test_response_times_filtered_by_service(incidents, payments):
    weeks = response_times(period_ending(weeks=4), service_id=payments.id).weeks
    assert [(w.incidents, w.acknowledged, w.mean_to_ack, w.median_to_ack) for w in weeks] == [
        (0, 0, None, None),
        (1, 1, 6 * MIN, 6 * MIN),
        (0, 0, None, None),
        (1, 0, None, None),
    ]


def test_without_percentiles_medians_are_left_out_past_the_bound(incidents, monkeypatch):
    # SQLite's path (medians in Python, bounded), taken on any database.
    monkeypatch.setattr(insights, "_has_percentiles", lambda: False)
    monkeypatch.setattr(insights, "PYTHON_MEDIAN_LIMIT", 4)  # the week's incidents: 6 in all
    times = response_times(period_ending(weeks=4))
    assert not times.has_medians
    assert times.weeks[1].mean_to_ack == dt.timedelta(minutes=6, seconds=40)
    assert times.weeks[1].median_to_ack is None


# --- pages per person ------------------------------------------------------------------------


def test_pages_per_person_per_week_with_night_pages_in_their_time_zone(pages):
    people = pages_by_person(period_ending(weeks=4))
    assert [(p.person, p.time_zone, p.pages, p.night) for p in people] == [
        ("alice", "America/New_York", [0, 3, 3, 0], [0, 2, 2, 0]),
        ("bob", "UTC", [0, 3, 1, 1], [0, 2, 0, 1]),
        ("charlie", "Asia/Kolkata", [0, 0, 0, 3], [0, 0, 0, 2]),
    ]
    assert [(p.total, p.night_total) for p in people] == [(6, 4), (5, 3), (3, 2)]


def test_pages_filtered_by_service(pages, payments):
    people = pages_by_person(period_ending(weeks=4), service_id=payments.id)
    assert [(p.person, p.pages, p.night) for p in people] == [
        ("alice", [0, 3, 0, 0], [0, 2, 0, 0]),
        ("charlie", [0, 0, 0, 3], [0, 0, 0, 2]),
    ]


def test_a_time_zone_that_does_not_exist_counts_nights_in_utc(incidents, bob):
    PersonSettings.objects.create(user=bob, time_zone="Mars/Olympus_Mons")
    make_page(bob, incidents["i1"], at(2, 23))
    make_page(bob, incidents["i1"], at(3, 12))
    (person,) = pages_by_person(period_ending(weeks=4))
    assert (person.time_zone, person.pages, person.night) == ("UTC", [0, 2, 0, 0], [0, 1, 0, 0])


# --- noisiest alerts -------------------------------------------------------------------------


def test_noisiest_alerts_by_occurrences_across_incidents(alerts):
    assert noisiest_alerts(period_ending(weeks=4)) == [
        NoisyAlert("am-checkout", "fp-cpu", "CPU high on web-2", 12, 2, 2, at(9, 6)),
        NoisyAlert("gf-payments", "fp-latency", "fp-latency summary", 9, 1, 1, at(16, 9)),
        NoisyAlert("am-checkout", "fp-disk", "fp-disk summary", 3, 1, 1, at(17)),
    ]


def test_noisiest_alerts_limit_filter_and_longer_period(alerts, service):
    assert [a.fingerprint for a in noisiest_alerts(period_ending(weeks=4), limit=1)] == ["fp-cpu"]
    assert [
        (a.fingerprint, a.occurrences)
        for a in noisiest_alerts(period_ending(weeks=12), service_id=service.id)
    ] == [("fp-old", 100), ("fp-cpu", 12), ("fp-disk", 3)]


def test_no_alerts_no_noise(db):
    assert noisiest_alerts(period_ending(weeks=4)) == []


# --- formatting ------------------------------------------------------------------------------


def test_durations_read_as_people_say_them():
    assert [
        format_duration(d)
        for d in (
            None,
            dt.timedelta(seconds=45),
            dt.timedelta(minutes=6, seconds=40),
            dt.timedelta(minutes=90),
            dt.timedelta(hours=3),
            dt.timedelta(days=2, hours=4, minutes=10),
            dt.timedelta(days=1),
        )
    ] == ["–", "45 s", "7 min", "1 h 30 min", "3 h", "2 d 4 h", "1 d"]


# --- the page --------------------------------------------------------------------------------


def test_page_shows_every_chart_as_inline_svg_with_a_table(web_charlie, alerts, pages):
    response = web_charlie.get("/insights/?weeks=4")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg ") == 6
    assert html.count('role="img"') == 6
    assert "<?xml" not in html
    assert "<script" not in html.split('id="main"', 1)[1]  # no chart script, no CDN
    for title in (
        "Incidents per week by service",
        "Alerts per week by service",
        "Time to acknowledge (minutes)",
        "Time to resolve (hours)",
        "Noisiest alerts (occurrences)",
    ):
        assert f'aria-label="{title}"' in html
    assert html.count("<details") == 6
    assert "CPU high on web-2" in html
    assert "1 h 30 min" in html  # week of 2 March, mean and median time to resolve
    assert response.context["weeks"] == 4
    people = [row["person"].person for row in response.context["pages_rows"]]
    assert people == ["alice", "bob", "charlie"]


def test_page_filters_by_service_and_weeks(web_charlie, alerts, pages, payments):
    response = web_charlie.get(f"/insights/?weeks=26&service={payments.id}")
    assert response.status_code == 200
    ctx = response.context
    assert (ctx["weeks"], ctx["service_id"], len(ctx["period"].weeks)) == (26, payments.id, 26)
    assert [r.service for r in ctx["volume"]] == ["payments"]
    assert [a.fingerprint for a in ctx["noisy"]] == ["fp-latency"]
    assert f'<option value="{payments.id}" selected>payments</option>' in response.content.decode()


def test_page_ignores_filters_it_does_not_know(web_charlie, alerts):
    response = web_charlie.get("/insights/?weeks=7&service=999999")
    assert response.status_code == 200
    assert (response.context["weeks"], response.context["service_id"]) == (12, None)
    assert [r.service for r in response.context["volume"]] == ["checkout", "payments"]


def test_page_renders_with_no_data(web_charlie):
    response = web_charlie.get("/insights/")
    assert response.status_code == 200
    assert response.content.decode().count('class="no_data">No data in this period<') == 6


def test_page_needs_a_login(client, db):
    response = client.get("/insights/")
    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_page_is_read_only(web_alice):
    assert web_alice.post("/insights/").status_code == 405


def test_page_queries_stay_few_with_many_rows(
    web_charlie, alice, bob, charlie, django_assert_max_num_queries
):
    services = Service.objects.bulk_create(Service(name=f"svc-{i:02}") for i in range(20))
    integrations = Integration.objects.bulk_create(
        Integration(name=f"int-{i:02}", kind=Kind.GENERIC, service=s, token=f"t{i}")
        for i, s in enumerate(services)
    )
    zones = ["UTC", "America/New_York", "Asia/Kolkata"]
    for user, zone in zip((alice, bob, charlie), zones, strict=True):
        PersonSettings.objects.create(user=user, time_zone=zone)
    incidents = Incident.objects.bulk_create(
        Incident(
            number=n,
            title=f"incident {n}",
            service=services[n % 20],
            status=Status.RESOLVED,
            triggered_at=NOW - dt.timedelta(hours=7 * n),
            acknowledged_at=NOW - dt.timedelta(hours=7 * n) + (n % 13) * MIN,
            resolved_at=NOW - dt.timedelta(hours=7 * n) + (n % 17) * 10 * MIN,
        )
        for n in range(1, 301)
    )
    Alert.objects.bulk_create(
        Alert(
            integration=integrations[n % 20],
            service=services[n % 20],
            fingerprint=f"fp-{n % 40}",
            status=AlertStatus.RESOLVED,
            summary=f"alert {n}",
            first_seen=NOW - dt.timedelta(hours=5 * n),
            last_seen=NOW - dt.timedelta(hours=5 * n - 1),
            occurrences=n % 9 + 1,
            incident=incidents[n % 300],
        )
        for n in range(1, 401)
    )
    Page.objects.bulk_create(
        Page(
            incident=incidents[n % 300],
            person=(alice, bob, charlie)[n % 3],
            channel="sms",
            status=PageStatus.DELIVERED,
            send_after=NOW - dt.timedelta(hours=3 * n),
            sent_at=NOW - dt.timedelta(hours=3 * n),
        )
        for n in range(1, 301)
    )
    # session, user, services; volume 2; response times 1 (+1 for medians in Python without
    # SQL percentiles); pages 3 (zones, counts, names); noisy alerts 3 (top, their incidents,
    # their summaries)
    with django_assert_max_num_queries(13):
        response = web_charlie.get("/insights/?weeks=52")
    assert response.status_code == 200
    assert sum(r.total_incidents for r in response.context["volume"]) == 300
    assert len(response.context["noisy"]) == 10


def test_night_pages_in_new_york_follow_summer_time():
    # The fixture's reasoning, checked against the zone database itself.
    ny = ZoneInfo("America/New_York")
    assert at(4, 3, 30).astimezone(ny).hour == 22
    assert at(10, 11, 30).astimezone(ny).hour == 7


# --- charts ----------------------------------------------------------------------------------


def test_busiest_services_are_named_and_the_rest_summed_as_other():
    period = period_ending(weeks=4)
    rows = [
        insights.ServiceVolume(i, f"svc-{i}", [0, i, 0, 1], [0, 0, 0, 0]) for i in range(9, 0, -1)
    ]
    rows.append(insights.ServiceVolume(99, "<b>bold</b>", [0, 0, 0, 1], [0, 0, 0, 0]))
    svg = charts.volume_chart(period, rows, "incidents")
    assert [f">svc-{i}<" in svg for i in range(9, 0, -1)] == [True] * 7 + [False] * 2
    assert ">Other<" in svg
    assert "<b>" not in svg and "&lt;b&gt;" not in svg  # not among the 7, and escaped anyway
    escaped = charts.volume_chart(period, rows[-1:], "incidents")
    assert "&lt;b&gt;bold&lt;/b&gt;" in escaped and "<b>" not in escaped


def test_a_chart_is_drawn_again_only_when_its_numbers_change():
    period = period_ending(weeks=4)
    rows = [insights.ServiceVolume(1, "checkout", [0, 1, 2, 3], [0, 0, 0, 0])]
    first = charts.volume_chart(period, rows, "incidents")
    assert charts.volume_chart(period, rows, "incidents") == first  # from the cache: same ids
    rows[0].incidents[3] = 4
    assert charts.volume_chart(period, rows, "incidents") != first
