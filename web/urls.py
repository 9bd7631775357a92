"""The web UI's routes: each area's module brings its own `urlpatterns`."""

from web.views import home, incidents, insights, oncall, outbox, postmortems, profile, setup

urlpatterns = [
    *home.urlpatterns,
    *incidents.urlpatterns,
    *postmortems.urlpatterns,
    *oncall.urlpatterns,
    *setup.urlpatterns,
    *profile.urlpatterns,
    *insights.urlpatterns,
    *outbox.urlpatterns,
]
