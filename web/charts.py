"""Render the insights as SVG charts, server-side with pygal, in Muster's colours.

Every chart is inlined in the page (no JavaScript: pygal's tooltip script and its inline config
script are left out), scales to its container through its viewBox, and carries role="img" and
an aria-label; the page puts a table with the same numbers beside it.

pygal takes tens of milliseconds per chart, so a rendered chart is cached under a digest of
everything drawn in it: the page re-renders a chart only when its numbers change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence

import pygal
from django.core.cache import cache
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from pygal.style import Style

from web.insights import NoisyAlert, Period, PersonPages, ResponseTimes, ServiceVolume

# The palette of web/static/web/muster.css (--accent, --sev2, --ok, --danger, --warn, ...),
# ordered so neighbouring series stay apart, then two darker tones for the rest.
COLOURS = ("#1446a0", "#c2410c", "#136c2e", "#a3141c", "#8a5a00", "#555555", "#0f1d3a", "#6b3fa0")
STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#111111",
    foreground_strong="#111111",
    foreground_subtle="#555555",
    guide_stroke_color="#d0d4da",
    major_guide_stroke_color="#d0d4da",
    colors=COLOURS,
    opacity="0.9",
    opacity_hover="1",
    font_family='system-ui, -apple-system, "Segoe UI", sans-serif',
    title_font_size=17,
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=13,
    value_font_size=13,
    no_data_font_size=20,
    transition="0s",
)
MAX_SERIES = 7  # services or people beyond these are summed into "Other"
MAX_BARS = 15
WIDE = 1200  # charts that take the page's whole width: text keeps the size of the others
CACHE_SECONDS = 24 * 3600
CACHE_VERSION = 2  # bump when the style or the config below changes
SCRIPT = re.compile(r"<script\b.*?</script>", re.S)
Series = list[tuple[str, list, dict]]  # (label, values, pygal's per-series options)


def _config(title: str, **options) -> dict:
    return {
        "title": title,
        "width": 640,
        "height": 340,
        "include_x_axis": True,  # durations and counts are read from zero
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 4,
        "truncate_legend": 28,
        "no_data_text": "No data in this period",
        "print_values": False,
        **options,
    }


def _week_labels(period: Period) -> dict:
    labels = [f"{monday.day} {monday:%b}" for monday in period.weeks]
    options: dict = {"x_labels": labels, "x_label_rotation": -30 if len(labels) > 12 else 0}
    if len(labels) > 12:
        # 26 or 52 weeks: name every fourth week, keep the others as minor ticks.
        options |= {"x_labels_major_every": 4, "show_minor_x_labels": False}
    return options


def render(kind: type[pygal.graph.graph.Graph], options: dict, series: Series) -> SafeString:
    """Return the chart as inline SVG labelled with its title, from the cache when drawn before."""
    digest = hashlib.sha256(
        repr((CACHE_VERSION, kind.__name__, sorted(options.items()), series)).encode()
    ).hexdigest()
    key = f"web:chart:{digest}"
    svg = cache.get(key)
    if svg is None:
        chart = kind(style=STYLE, disable_xml_declaration=True, js=[], **options)
        for label, values, extra in series:
            chart.add(label, values, **extra)
        # The config script only feeds pygal's tooltip script, which is not loaded.
        svg = SCRIPT.sub("", chart.render(is_unicode=True))
        label = escape(options["title"])
        svg = svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)
        cache.set(key, svg, CACHE_SECONDS)
    return mark_safe(svg)  # noqa: S308 - pygal escapes every text it writes; the label is escaped


def _stack(rows: Sequence, values: str, name: str) -> Series:
    series = [(getattr(r, name), list(getattr(r, values))) for r in rows[:MAX_SERIES]]
    if len(rows) > MAX_SERIES:
        rest = (getattr(r, values) for r in rows[MAX_SERIES:])
        series.append(("Other", [sum(week) for week in zip(*rest, strict=True)]))
    # Zeros would draw empty slivers; None draws nothing.
    return [(label, [v or None for v in numbers], {}) for label, numbers in series]


def volume_chart(period: Period, rows: list[ServiceVolume], what: str) -> SafeString:
    """Return a stacked bar chart of incidents or alerts ('incidents'/'alerts') per week."""
    options = _config(
        f"{what.capitalize()} per week by service", order_min=0, **_week_labels(period)
    )
    return render(pygal.StackedBar, options, _stack(rows, what, "service"))


def _in(value: dt.timedelta | None, unit: int) -> float | None:
    return None if value is None else round(value.total_seconds() / unit, 1)


def response_chart(period: Period, times: ResponseTimes, what: str) -> SafeString:
    """Return a line chart of the mean (and median) time to acknowledge ('ack') or resolve."""
    if what == "ack":
        title, unit, mean, median = (
            "Time to acknowledge (minutes)",
            60,
            "mean_to_ack",
            "median_to_ack",
        )
    else:
        title, unit = "Time to resolve (hours)", 3600
        mean, median = "mean_to_resolve", "median_to_resolve"
    options = _config(title, allow_interruptions=True, dots_size=4, **_week_labels(period))
    series: Series = [("Mean", [_in(getattr(w, mean), unit) for w in times.weeks], {})]
    if times.has_medians:
        dashed = {"stroke_style": {"dasharray": "6, 4", "width": 2}}
        series.append(("Median", [_in(getattr(w, median), unit) for w in times.weeks], dashed))
    if all(v is None for _, values, _ in series for v in values):
        series = []  # pygal draws "no data" only for a chart without series
    return render(pygal.Line, options, series)


def pages_chart(people: list[PersonPages]) -> SafeString:
    """Return a horizontal stacked bar per person: daytime and night-time pages in the period."""
    # pygal draws the first bar at the bottom: reverse so the most paged person is on top.
    shown = people[:MAX_BARS][::-1]
    options = _config(
        "Pages per person (night: 22:00–07:00 their time)",
        width=WIDE,
        height=max(240, 110 + 34 * len(shown)),
        x_labels=[p.person for p in shown],
        order_min=0,  # whole pages: no 0.2 ticks
    )
    series: Series = []
    if shown:
        series = [
            ("Daytime", [(p.total - p.night_total) or None for p in shown], {}),
            ("Night-time", [p.night_total or None for p in shown], {}),
        ]
    return render(pygal.HorizontalStackedBar, options, series)


def noisy_chart(noisy: list[NoisyAlert]) -> SafeString:
    """Return a horizontal bar per noisy alert fingerprint: its occurrences in the period."""
    shown = noisy[::-1]  # the noisiest on top
    options = _config(
        "Noisiest alerts (occurrences)",
        width=WIDE,
        height=max(240, 110 + 34 * len(shown)),
        x_labels=[a.summary or a.fingerprint for a in shown],
        truncate_label=40,
        order_min=0,
        show_legend=False,
    )
    series: Series = [("Occurrences", [a.occurrences for a in shown], {})] if shown else []
    return render(pygal.HorizontalBar, options, series)
