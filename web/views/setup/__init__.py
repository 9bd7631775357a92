"""Web UI: the Setup area. Everyone reads the configuration; admins change it (responders
silences), as in the API. One module per page group; each brings its `urlpatterns`."""

from __future__ import annotations

from web.views.setup import index, integrations, policies, routing, runbooks, services

urlpatterns = [
    *index.urlpatterns,
    *services.urlpatterns,
    *integrations.urlpatterns,
    *routing.urlpatterns,
    *policies.urlpatterns,
    *runbooks.urlpatterns,
]
