"""Routes: ingest on senders' native paths, the API, health, admin."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from accounts.api import TokenViewSet, UserViewSet, me
from alerts import heartbeats, ingest
from alerts.api import AlertViewSet, IntegrationViewSet, RoutingRuleViewSet, SilenceViewSet
from incidents.api import IncidentViewSet, ServiceViewSet
from muster import health

router = DefaultRouter()
router.register("services", ServiceViewSet, basename="service")
router.register("incidents", IncidentViewSet, basename="incident")
router.register("alerts", AlertViewSet, basename="alert")
router.register("integrations", IntegrationViewSet, basename="integration")
router.register("routing-rules", RoutingRuleViewSet, basename="routingrule")
router.register("silences", SilenceViewSet, basename="silence")
router.register("tokens", TokenViewSet, basename="token")
router.register("users", UserViewSet, basename="user")

urlpatterns = [
    # Ingest. PagerDuty and Opsgenie senders use their own APIs' paths.
    path("integrations/heartbeat/<str:token>/", heartbeats.heartbeat_ping),
    path("integrations/<str:kind>/<str:token>/", ingest.integration_ingest),
    re_path(r"^v2/enqueue/?$", ingest.pagerduty_enqueue),
    re_path(r"^v2/alerts/?$", ingest.opsgenie_create),
    re_path(r"^v2/alerts/(?P<identifier>[^/]+)/close/?$", ingest.opsgenie_close),
    re_path(r"^v2/alerts/(?P<identifier>[^/]+)/acknowledge/?$", ingest.opsgenie_acknowledge),
    # API
    path("api/v1/me/", me),
    path("api/v1/", include(router.urls)),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # Health
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("metrics", health.metrics),
    path("admin/", admin.site.urls),
]
