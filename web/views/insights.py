"""Web UI: the insights page, charts of what the pager has been doing (/insights/)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_safe

from accounts.models import Role
from incidents.models import Service
from web import charts
from web.access import role_required
from web.insights import (
    DEFAULT_WEEKS,
    WEEK_CHOICES,
    noisiest_alerts,
    pages_by_person,
    period_ending,
    response_times,
    volume_by_service,
)


def format_duration(value: dt.timedelta | None) -> str:
    """Return a duration as people say it: "45 s", "12 min", "3 h 5 min", "2 d 4 h"; "–" if none."""
    if value is None:
        return "–"
    seconds = round(value.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _cells(numbers: Iterable[int | str]) -> SafeString:
    """Return table cells for numbers (ints or "n / m" of ints), built without the template loop.

    A year of weeks for dozens of services or people is thousands of cells: rendered one by one
    through the template engine, they would take most of the page's time budget.
    """
    return mark_safe("".join(f"<td>{n}</td>" for n in numbers))  # noqa: S308 - numbers only


def _choice(value: str | None, allowed: set[int], default: int | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return default
    return number if number in allowed else default


# pygal's inline SVG charts carry their own <style> and style attributes (no script: see
# web/charts.py), so this page alone also allows inline style.
@csp_update({"style-src": [UNSAFE_INLINE]})
@require_safe
@role_required(read=Role.OBSERVER)
def insights(request: HttpRequest) -> HttpResponse:
    """Show volume, response times, pages per person and noisy alerts for the chosen weeks."""
    services = list(Service.objects.only("id", "name"))
    weeks = _choice(request.GET.get("weeks"), set(WEEK_CHOICES), DEFAULT_WEEKS)
    service_id = _choice(request.GET.get("service"), {s.id for s in services}, None)
    period = period_ending(weeks=weeks)
    volume = volume_by_service(period, service_id=service_id)
    times = response_times(period, service_id=service_id)
    people = pages_by_person(period, service_id=service_id)
    noisy = noisiest_alerts(period, service_id=service_id)
    # Time to acknowledge and time to resolve: one chart and one table each, of one shape.
    response_figures = [
        {
            "key": key,
            "verb": verb,
            "done": done,
            "chart": charts.response_chart(period, times, key),
            "rows": [
                {
                    "week": w.week,
                    "incidents": w.incidents,
                    "done": getattr(w, done.lower()),
                    "mean": format_duration(getattr(w, f"mean_to_{key}")),
                    "median": format_duration(getattr(w, f"median_to_{key}")),
                }
                for w in times.weeks
            ],
        }
        for key, verb, done in (
            ("ack", "acknowledge", "Acknowledged"),
            ("resolve", "resolve", "Resolved"),
        )
    ]
    pages_rows = [
        {
            "person": p,
            "cells": _cells(
                f"{n} / {night}" if night else n for n, night in zip(p.pages, p.night, strict=True)
            ),
        }
        for p in people
    ]
    volume_rows = [
        {"row": r, "incidents": _cells(r.incidents), "alerts": _cells(r.alerts)} for r in volume
    ]
    context = {
        "services": services,
        "service_id": service_id,
        "week_choices": WEEK_CHOICES,
        "weeks": weeks,
        "period": period,
        "volume": volume,
        "times": times,
        "response_figures": response_figures,
        "pages_rows": pages_rows,
        "volume_rows": volume_rows,
        "noisy": noisy,
        "charts": {
            "incidents": charts.volume_chart(period, volume, "incidents"),
            "alerts": charts.volume_chart(period, volume, "alerts"),
            "pages": charts.pages_chart(people),
            "noisy": charts.noisy_chart(noisy),
        },
    }
    return render(request, "web/insights/index.html", context)


urlpatterns = [path("insights/", insights, name="web-insights")]
