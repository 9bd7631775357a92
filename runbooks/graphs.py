"""Graph links for an incident: the service's URL templates filled from its first alert's labels,
plus the graph, dashboard and image links its alerts carried.

Label values are URL-encoded (every reserved character, "/" too) into the template, and the
scheme and host of a template are never templated, so a label can move a link's path and query
but never send it to another site. Only absolute http(s) URLs survive, from either source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from django.db.models import Q

from alerts.models import Alert
from core.compiled import Lookup
from incidents.models import Incident
from runbooks.models import GraphTemplate
from runbooks.services import first_alert

# The kinds of alert links that are graphs, and what to call one that has no text.
GRAPH_KINDS = {
    "graph": "Graph",
    "panel": "Panel",
    "dashboard": "Dashboard",
    "generator": "Source graph",
    "image": "Image",
}
MAX_LINKS = 20
MAX_URL = 2000
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")


class GraphTemplateError(ValueError):
    """A URL template that cannot be used; the message says why."""


@dataclass(frozen=True)
class GraphLink:
    name: str
    url: str
    image_url: str | None = None


def safe_url(url: object) -> bool:
    """Return whether `url` is an absolute http(s) URL with nothing odd in it."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        return False
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def check_url_template(template: str) -> str:
    """Return `template` if it is a usable graph URL template; raise GraphTemplateError."""
    if not isinstance(template, str) or not template:
        raise GraphTemplateError("a URL template is needed")
    sample = _PLACEHOLDER.sub("x", template)
    if not safe_url(sample):
        raise GraphTemplateError(
            "a URL template must be an absolute http:// or https:// URL without spaces, "
            "e.g. https://grafana.example.com/d/node?var-host={instance}"
        )
    head = template.split("://", 1)[1]
    host = re.split(r"[/?#]", head, maxsplit=1)[0]
    if _PLACEHOLDER.search(host) or "{" in host:
        raise GraphTemplateError("placeholders fill the path and query, never the scheme or host")
    return template


def labels_in(template: str) -> list[str]:
    """Return the label names a template's `{placeholders}` take."""
    return _PLACEHOLDER.findall(template)


def fill(template: str, labels: dict[str, str]) -> str | None:
    """Return `template` with each `{label}` replaced by its URL-encoded value, or None when a
    label it names is missing (or empty) or the result is not a safe URL."""
    if not template:
        return None
    if any(not labels.get(name) for name in labels_in(template)):
        return None
    url = _PLACEHOLDER.sub(lambda m: quote(str(labels[m.group(1)]), safe=""), template)
    return url if safe_url(url) else None


def template_links(templates: Iterable[GraphTemplate], labels: dict[str, str]) -> list[GraphLink]:
    """Return a link for each template whose labels are all there (pure)."""
    links = []
    for template in templates:
        url = fill(template.url_template, labels)
        if url is None:
            continue
        links.append(GraphLink(template.name, url, fill(template.image_url_template, labels)))
    return links


def alert_links(links: Iterable[object]) -> list[GraphLink]:
    """Return the graph links among an alert's stored links (`{"kind", "url", "text"}`)."""
    found = []
    for link in links:
        if not isinstance(link, dict):
            continue
        kind, url, text = link.get("kind"), link.get("url"), link.get("text") or ""
        if kind not in GRAPH_KINDS or not safe_url(url):
            continue
        name = str(text).strip() or GRAPH_KINDS[kind]
        found.append(GraphLink(name, url, url if kind == "image" else None))
    return found


def deduplicated(links: Iterable[GraphLink], limit: int = MAX_LINKS) -> list[GraphLink]:
    """Return `links` without repeated URLs (a later image fills in a missing preview)."""
    by_url: dict[str, GraphLink] = {}
    for link in links:
        seen = by_url.get(link.url)
        if seen is None:
            if len(by_url) < limit:
                by_url[link.url] = link
        elif seen.image_url is None and link.image_url is not None:
            by_url[link.url] = GraphLink(seen.name, seen.url, link.image_url)
    return list(by_url.values())


# Every new incident's opening post asks: compiled once (core.compiled).
_TEMPLATES = Lookup(
    lambda service: GraphTemplate.objects.filter(Q(service_id=service) | Q(service__isnull=True)),
    takes=(int,),
)


def templates_for(incident: Incident) -> list[GraphTemplate]:
    """Return the graph templates of the incident's service, then the any-service ones."""
    found = _TEMPLATES.instances(incident.service_id)
    return sorted(found, key=lambda t: (t.service_id is None, t.position, t.pk))


def graph_links(incident: Incident) -> list[GraphLink]:
    """Return the incident's graph links: its templates, then what its alerts carried."""
    alert = first_alert(incident)
    labels = alert.labels if alert is not None and isinstance(alert.labels, dict) else {}
    links = template_links(templates_for(incident), {str(k): str(v) for k, v in labels.items()})
    stored = (
        Alert.objects.filter(incident=incident)
        .order_by("first_seen", "id")
        .values_list("links", flat=True)[:200]
    )
    for alert_stored in stored:
        if isinstance(alert_stored, list):
            links += alert_links(alert_stored)
    return deduplicated(links)
