"""The Markdown outside docs/ (which `mkdocs build --strict` checks) links to files that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["README.md", "CONTRIBUTING.md", "deploy/README.md", "bench/README.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_leads_to_a_file(page):
    path = ROOT / page
    targets = [m.group(1) for m in LINK.finditer(path.read_text())]
    relative = [t for t in targets if not re.match(r"^[a-z]+:", t) and not t.startswith("#")]

    broken = [t for t in relative if not (path.parent / t.split("#")[0]).exists()]

    assert relative, f"{page} links nowhere"
    assert broken == [], f"{page} links to files that do not exist"
