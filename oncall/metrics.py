"""Paging counters, exported at /metrics."""

from prometheus_client import Counter, Histogram

PAGES = Counter("muster_pages", "Pages by channel and what became of them.", ["channel", "status"])
UNPAGED = Counter("muster_unpaged_incidents", "Incidents for which nobody could be paged.")
PAGE_LATENCY = Histogram(
    "muster_page_send_seconds",
    "From an incident triggering to its page being handed to the provider.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
)
