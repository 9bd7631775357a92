"""Routes: ingest on senders' native paths, the API, health, admin."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.renderers import JSONRenderer
from rest_framework.routers import DefaultRouter

from accounts.api import TokenViewSet, UserViewSet, me
from accounts.permissions import RolePermission
from alerts import heartbeats, ingest
from alerts.api import AlertViewSet, IntegrationViewSet, RoutingRuleViewSet, SilenceViewSet
from incidents.api import IncidentViewSet, ServiceViewSet
from muster import api_errors, health

router = DefaultRouter()
router.register("services", ServiceViewSet, basename="service")
router.register("incidents", IncidentViewSet, basename="incident")
router.register("alerts", AlertViewSet, basename="alert")
router.register("integrations", IntegrationViewSet, basename="integration")
router.register("routing-rules", RoutingRuleViewSet, basename="routingrule")
router.register("silences", SilenceViewSet, basename="silence")
router.register("tokens", TokenViewSet, basename="token")
router.register("users", UserViewSet, basename="user")


class _ErrorsAsJson:
    """Answer refusals in the API's JSON error shape, whatever the view renders otherwise."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class SchemaView(_ErrorsAsJson, SpectacularAPIView):
    permission_classes = [RolePermission]  # any role reads it; anonymous requests get 401


class DocsView(_ErrorsAsJson, SpectacularSwaggerView):
    permission_classes = [RolePermission]
    http_method_names = ["get", "head"]  # its HTML renderer cannot answer OPTIONS


handler404 = api_errors.not_found
handler500 = api_errors.server_error

urlpatterns = [
    # Ingest. PagerDuty and Opsgenie senders use their own APIs' paths.
    # The trailing slash is optional: APPEND_SLASH would answer a POST with a redirect that
    # senders follow as a GET.
    re_path(r"^integrations/heartbeat/(?P<token>[^/]+)/?$", heartbeats.heartbeat_ping),
    re_path(r"^integrations/(?P<kind>[^/]+)/(?P<token>[^/]+)/?$", ingest.integration_ingest),
    re_path(r"^v2/enqueue/?$", ingest.pagerduty_enqueue),
    re_path(r"^v2/alerts/?$", ingest.opsgenie_create),
    # An alias may hold a "/" (sent as %2F, decoded before routing), so the identifier is `.+`.
    re_path(r"^v2/alerts/(?P<identifier>.+)/close/?$", ingest.opsgenie_close),
    re_path(r"^v2/alerts/(?P<identifier>.+)/acknowledge/?$", ingest.opsgenie_acknowledge),
    # API
    path("api/v1/me/", me),
    path("api/v1/", include(router.urls)),
    path("api/v1/schema/", SchemaView.as_view(), name="schema"),
    path("api/v1/docs/", DocsView.as_view(url_name="schema"), name="api-docs"),
    # Health
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("metrics", health.metrics),
    path("admin/", admin.site.urls),
]
