"""API routes of runbooks, included under /api/v1/ by muster/urls.py."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from runbooks import api

router = SimpleRouter()
router.register("runbooks", api.RunbookViewSet, basename="runbook")
router.register("actions", api.ActionViewSet, basename="action")
router.register("graph-templates", api.GraphTemplateViewSet, basename="graphtemplate")

urlpatterns = [
    path("incidents/<int:number>/runbook/", api.IncidentRunbookView.as_view()),
    path("incidents/<int:number>/graphs/", api.IncidentGraphsView.as_view()),
    *router.urls,
]
