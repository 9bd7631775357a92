"""Parse Grafana unified alerting (Grafana 9+) webhook notifications.

The payload has Alertmanager's outline (see `alertmanager`), with these per-alert extras:

- links: `generatorURL` (generator), `silenceURL` (silence), `dashboardURL` (dashboard),
  `panelURL` (panel), `imageURL` (image), plus runbook/dashboard annotations. Grafana sends ""
  for URLs it does not have; those are skipped silently.
- `values` (query ref ID -> number) become annotations named "value.<refID>", e.g.
  {"A": 42.5} -> annotations["value.A"] = "42.5"; null becomes "null". An annotation the rule
  already defines under that name wins.
- `valueString` is kept verbatim as annotations["valueString"].

Legacy (pre-9) Grafana alert notifications have no `alerts` list and are rejected.
"""

from __future__ import annotations

from typing import Any

from alerts.sources.alertmanager import add_annotation_links, parse_batch
from alerts.sources.base import (
    MAX_ANNOTATION_VALUE,
    MAX_KEY,
    Link,
    NormalizedAlert,
    add_link,
    clean_text,
    compact_json,
    json_type,
)

URL_FIELDS = (
    ("generator", "generatorURL"),
    ("silence", "silenceURL"),
    ("dashboard", "dashboardURL"),
    ("panel", "panelURL"),
    ("image", "imageURL"),
)
LEGACY_HINT = (
    "this looks like a legacy Grafana alert notification; "
    "use a Grafana 9+ unified alerting webhook contact point"
)


def parse(payload: Any) -> list[NormalizedAlert]:
    """Turn a Grafana webhook payload into one alert per element of `alerts`."""
    legacy = isinstance(payload, dict) and ("evalMatches" in payload or "ruleName" in payload)
    return parse_batch(payload, _enrich, hints=[LEGACY_HINT] if legacy else None)


def _enrich(
    item: dict[str, Any], annotations: dict[str, str], links: list[Link], warnings: list[str]
) -> None:
    """Add Grafana's URL fields as links and its evaluated values as annotations."""
    for kind, key in URL_FIELDS:
        add_link(links, kind, item.get(key), "", warnings)
    add_annotation_links(annotations, links, warnings)
    values = item.get("values")
    if isinstance(values, dict):
        for ref, value in values.items():
            text = value if isinstance(value, str) else compact_json(value)
            name = clean_text(f"value.{ref}", warnings, "values key", MAX_KEY)
            if name not in annotations:
                annotations[name] = clean_text(text, warnings, name, MAX_ANNOTATION_VALUE)
    elif values is not None:
        warnings.append(f"values: expected an object, got {json_type(values)}; ignored")
    if item.get("valueString") not in (None, ""):
        annotations["valueString"] = clean_text(
            item["valueString"], warnings, "valueString", MAX_ANNOTATION_VALUE
        )
