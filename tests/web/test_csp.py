"""The Content-Security-Policy header (django-csp): the web UI runs only its own files; the API
docs and the printable postmortem widen it for themselves only. Real Chromium loads the pages
under it in tests/browser/test_untrusted_output.py."""

from __future__ import annotations

from incidents.models import Source
from incidents.opening import open_incident


def policy(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return {d.split()[0]: d.strip() for d in header.split(";") if d.strip()}


def test_pages_allow_no_inline_script_or_style(web_alice):
    parts = policy(web_alice.get("/incidents/"))
    assert parts["script-src"] == "script-src 'self'"
    assert parts["style-src"] == "style-src 'self'"
    assert parts["connect-src"] == "connect-src 'self'"
    assert parts["object-src"] == "object-src 'none'"
    assert parts["frame-ancestors"] == "frame-ancestors 'none'"
    assert parts["img-src"].startswith("img-src 'self'")


def test_the_api_docs_and_the_printable_postmortem_have_their_own_policy(web_alice, service):
    docs = policy(web_alice.get("/api/v1/docs/"))
    assert docs["script-src"] == "script-src 'self'"
    assert docs["style-src"] == "style-src 'self' 'unsafe-inline'"
    incident = open_incident(service, title="Disk full", severity=2, source=Source.ALERT)
    printable = policy(web_alice.get(f"/incidents/{incident.number}/postmortem/print/"))
    assert printable["script-src"] == "script-src 'none'"
    assert printable["style-src"] == "style-src 'unsafe-inline'"
