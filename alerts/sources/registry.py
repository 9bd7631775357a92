"""The parser of each wire format, by kind name; pure, no Django."""

from __future__ import annotations

from collections.abc import Callable

from alerts.sources import alertmanager, generic, grafana, opsgenie, pagerduty
from alerts.sources.base import NormalizedAlert

# kind name -> parse(payload) -> list[NormalizedAlert]; opsgenie's also takes
# action=, identifier=, identifier_type= (see alerts.sources.opsgenie).
PARSERS: dict[str, Callable[..., list[NormalizedAlert]]] = {
    "alertmanager": alertmanager.parse,
    "grafana": grafana.parse,
    "pagerduty": pagerduty.parse,
    "opsgenie": opsgenie.parse,
    "generic": generic.parse,
}
