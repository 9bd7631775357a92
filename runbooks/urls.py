"""API routes of runbooks, included under /api/v1/ by muster/urls.py."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from runbooks.api.action_views import ActionViewSet
from runbooks.api.graph_views import GraphTemplateViewSet, IncidentGraphsView
from runbooks.api.runbook_views import IncidentRunbookView, RunbookViewSet

router = SimpleRouter()
router.register("runbooks", RunbookViewSet, basename="runbook")
router.register("actions", ActionViewSet, basename="action")
router.register("graph-templates", GraphTemplateViewSet, basename="graphtemplate")

urlpatterns = [
    path("incidents/<int:number>/runbook/", IncidentRunbookView.as_view()),
    path("incidents/<int:number>/graphs/", IncidentGraphsView.as_view()),
    *router.urls,
]
