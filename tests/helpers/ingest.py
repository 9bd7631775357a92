"""Alert payloads from tests/alerts/fixtures, and what became of an ingest request."""

from __future__ import annotations

import json
from pathlib import Path

from alerts.models import IngestRequest, Integration
from alerts.processor import process_pending

FIXTURES = Path(__file__).resolve().parents[1] / "alerts" / "fixtures"


def load_fixture(kind: str, name: str) -> dict:
    """Return a real-shaped payload from tests/alerts/fixtures/<kind>/<name>.json."""
    return json.loads((FIXTURES / kind / f"{name}.json").read_text())


def results_of(response) -> list[dict]:
    """Return what became of each alert of an accepted ingest request, once processed."""
    process_pending()
    return IngestRequest.objects.get(pk=response.json()["request"]).results


def stored(client, integration: Integration, payload) -> IngestRequest:
    """POST `payload` to the integration's ingest URL; return the request it stored (not
    processed)."""
    url = f"/integrations/{integration.kind}/{integration.token}/"
    response = client.post(url, json.dumps(payload), content_type="application/json")
    assert response.status_code == 200, response.content
    return IngestRequest.objects.get(pk=response.json()["request"])
