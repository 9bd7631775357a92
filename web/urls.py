"""The web UI's routes: each area's module brings its own `urlpatterns`."""

from web.views import (
    home,
    incident_actions,
    incident_page,
    incidents,
    insights,
    oncall,
    outbox,
    postmortems,
)
from web.views.profile import account, chat_links, methods, page, rules
from web.views.setup import chat, index, integrations, policies, routing, runbooks, services

urlpatterns = [
    # Home, incidents, postmortems, on-call
    *home.urlpatterns,
    *incidents.urlpatterns,
    *incident_page.urlpatterns,
    *incident_actions.urlpatterns,
    *postmortems.urlpatterns,
    *oncall.urlpatterns,
    # Setup
    *index.urlpatterns,
    *chat.urlpatterns,
    *services.urlpatterns,
    *integrations.urlpatterns,
    *routing.urlpatterns,
    *policies.urlpatterns,
    *runbooks.urlpatterns,
    # My profile
    *page.urlpatterns,
    *methods.urlpatterns,
    *rules.urlpatterns,
    *account.urlpatterns,
    *chat_links.urlpatterns,
    # Insights, and the dev outbox
    *insights.urlpatterns,
    *outbox.urlpatterns,
]
