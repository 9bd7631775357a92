"""API routes of runbooks, included under /api/v1/ by muster/urls.py."""

from __future__ import annotations

urlpatterns: list = []
