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
    profile,
    setup,
)

urlpatterns = [
    *home.urlpatterns,
    *incidents.urlpatterns,
    *incident_page.urlpatterns,
    *incident_actions.urlpatterns,
    *postmortems.urlpatterns,
    *oncall.urlpatterns,
    *setup.urlpatterns,
    *profile.urlpatterns,
    *insights.urlpatterns,
    *outbox.urlpatterns,
]
