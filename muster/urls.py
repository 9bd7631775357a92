"""Routes: ingest on senders' native paths, the API, health, admin, the web UI."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path, re_path
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer
from rest_framework.routers import DefaultRouter

from accounts.api import TokenViewSet, UserViewSet, me
from accounts.permissions import RolePermission
from alerts import heartbeats, ingest
from alerts.api import AlertViewSet, IntegrationViewSet, RoutingRuleViewSet, SilenceViewSet
from incidents import postmortem_api
from incidents.api import IncidentViewSet, ServiceViewSet
from muster import error_handlers, health
from oncall import ical, pages_api
from oncall.api import audit_views, me_views, oncall_views, policy_views, schedule_views
from warroom import views as warroom_views
from warroom.surfaces import sms, voice

router = DefaultRouter()
router.register("services", ServiceViewSet, basename="service")
router.register("incidents", IncidentViewSet, basename="incident")
router.register("alerts", AlertViewSet, basename="alert")
router.register("integrations", IntegrationViewSet, basename="integration")
router.register("routing-rules", RoutingRuleViewSet, basename="routingrule")
router.register("silences", SilenceViewSet, basename="silence")
router.register("tokens", TokenViewSet, basename="token")
router.register("users", UserViewSet, basename="user")
router.register("teams", policy_views.TeamViewSet, basename="team")
router.register("schedules", schedule_views.ScheduleViewSet, basename="schedule")
router.register("layers", schedule_views.LayerViewSet, basename="layer")
router.register("overrides", schedule_views.OverrideViewSet, basename="override")
router.register("escalation-policies", policy_views.EscalationPolicyViewSet, basename="policy")
router.register("service-policies", policy_views.ServicePolicyViewSet, basename="servicepolicy")
router.register("me/contact-methods", me_views.ContactMethodViewSet, basename="contactmethod")
router.register(
    "me/notification-rules", me_views.NotificationRuleViewSet, basename="notificationrule"
)
router.register("audit", audit_views.AuditEntryViewSet, basename="audit")
router.register("pages", pages_api.PageViewSet, basename="page")
router.register("outbox", pages_api.OutboxViewSet, basename="outbox")


class _ErrorsAsJson:
    """Answer refusals in the API's JSON error shape, whatever the view renders otherwise."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class SchemaView(_ErrorsAsJson, SpectacularAPIView):
    permission_classes = [RolePermission]  # any role reads it; anonymous requests get 401


# Swagger UI's page has an inline <style> and its icons are data: images; its script is a file of
# its own (the split view's "?script"), so it needs no inline script.
@method_decorator(csp_update({"style-src": [UNSAFE_INLINE], "img-src": ["data:"]}), "dispatch")
class DocsView(_ErrorsAsJson, SpectacularSwaggerSplitView):
    permission_classes = [RolePermission]
    http_method_names = ["get", "head"]  # its HTML renderer cannot answer OPTIONS


handler404 = error_handlers.not_found
handler500 = error_handlers.server_error

urlpatterns = [
    # Ingest. PagerDuty and Opsgenie senders use their own APIs' paths.
    # The trailing slash is optional: APPEND_SLASH would answer a POST with a redirect that
    # senders follow as a GET.
    re_path(r"^integrations/heartbeat/(?P<token>[^/]+)/?$", heartbeats.heartbeat_ping),
    re_path(r"^integrations/(?P<kind>[^/]+)/(?P<token>[^/]+)/?$", ingest.integration_ingest),
    re_path(r"^v2/enqueue/?$", ingest.pagerduty_enqueue),
    re_path(r"^v2/alerts/?$", ingest.opsgenie_create),
    # An alias may hold any character: a "/" or a line break (sent as %2F, %0A: decoded before
    # routing), so the identifier is `.+` with `.` matching line breaks too.
    re_path(r"^v2/alerts/(?P<identifier>(?s:.+))/close/?$", ingest.opsgenie_close),
    re_path(r"^v2/alerts/(?P<identifier>(?s:.+))/acknowledge/?$", ingest.opsgenie_acknowledge),
    # Twilio's webhooks: replies to pages, by text and by keypad.
    path("twilio/sms/", sms.inbound_sms, name="twilio-sms"),
    path("twilio/voice/<int:page_id>/keypress/", voice.keypress, name="twilio-voice-keypress"),
    # Twilio's webhooks for pages: delivery statuses and what a paging call says.
    path("twilio/", include("oncall.twilio_urls")),
    path("slack/", include("warroom.slack.urls")),
    # iCal feeds: the secret token in the URL is the credential.
    re_path(
        r"^oncall/ical/schedule/(?P<token>[A-Za-z0-9_-]+)\.ics$",
        ical.schedule_feed,
        name="ical-schedule",
    ),
    re_path(
        r"^oncall/ical/person/(?P<token>[A-Za-z0-9_-]+)\.ics$",
        ical.person_feed,
        name="ical-person",
    ),
    # The war room's page: where the link in a page leads.
    path(
        "rooms/incident/<int:number>/",
        warroom_views.incident_room_page,
        name="warroom-incident-room",
    ),
    # API
    path("api/v1/me/", me),
    path("api/v1/me/settings/", me_views.PersonSettingsView.as_view()),
    path("api/v1/me/ical/", me_views.MyIcalView.as_view()),
    path("api/v1/me/ical/rotate/", me_views.MyIcalRotateView.as_view()),
    path("api/v1/oncall/", oncall_views.OnCallView.as_view()),
    path("api/v1/shifts/", oncall_views.ShiftsView.as_view()),
    path("api/v1/users/<int:pk>/deactivation-gaps/", oncall_views.DeactivationGapsView.as_view()),
    path("api/v1/incidents/<int:number>/page/", pages_api.page_person),
    path("api/v1/incidents/<int:number>/escalate/", pages_api.EscalateView.as_view()),
    path("api/v1/", include("warroom.urls")),
    path("api/v1/", include("runbooks.urls")),
    path("api/v1/", include(postmortem_api.urlpatterns)),
    path("api/v1/", include(router.urls)),
    path("api/v1/schema/", SchemaView.as_view(), name="schema"),
    path("api/v1/docs/", DocsView.as_view(url_name="schema"), name="api-docs"),
    # Health
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("metrics", health.metrics),
    path("admin/", admin.site.urls),
    # Mattermost's slash command /muster (warroom/mattermost).
    path("mattermost/", include("warroom.mattermost.urls")),
    # The on-call web UI
    path("", include("web.urls")),
]
