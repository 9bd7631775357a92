"""API: integrations (and what they received), routing rules, silences, alerts."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.audit import Audited, record_change
from accounts.models import Role, User
from alerts.matchers_field import MatchersField
from alerts.models import (
    MIN_HEARTBEAT_INTERVAL_SECONDS,
    SIGNING_KINDS,
    Alert,
    AlertStatus,
    IngestRequest,
    Integration,
    Kind,
    Outcome,
    RoutingRule,
    Silence,
)
from alerts.services import (
    create_silence,
    expire_silence,
    rotate_integration_token,
    update_silence,
)
from core.api_errors import Conflict, ParseBodyFirst, check_query_text
from core.pagination import cursor_by
from incidents.models import Service


def _is_admin(serializer) -> bool:
    request = serializer.context.get("request")
    return bool(request and request.user.has_role(Role.ADMIN))


class IntegrationSerializer(serializers.ModelSerializer):
    service = serializers.PrimaryKeyRelatedField(queryset=Service.objects.all())
    ingest_url = serializers.SerializerMethodField()
    token = serializers.SerializerMethodField()
    hmac_secret = serializers.CharField(
        max_length=200, required=False, allow_blank=True, write_only=True
    )
    has_hmac_secret = serializers.SerializerMethodField()

    class Meta:
        model = Integration
        fields = [
            "id",
            "name",
            "kind",
            "service",
            "enabled",
            "ingest_url",
            "token",
            "token_rotated_at",
            "hmac_secret",
            "has_hmac_secret",
            "hmac_header",
            "heartbeat_interval_seconds",
            "heartbeat_grace_seconds",
            "last_ping_at",
            "heartbeat_down",
            "created_at",
        ]
        read_only_fields = [
            "id",
            "token_rotated_at",
            "last_ping_at",
            "heartbeat_down",
            "created_at",
        ]

    # The URL and key are secrets: only admins see them.
    def get_ingest_url(self, obj) -> str | None:
        if not _is_admin(self):
            return None
        return obj.ingest_url

    def get_token(self, obj) -> str | None:
        return obj.token if _is_admin(self) else None

    def get_has_hmac_secret(self, obj) -> bool:
        return bool(obj.hmac_secret)

    def validate_kind(self, value):
        if self.instance is not None and value != self.instance.kind:
            raise ValidationError("an integration's kind cannot change; create another one")
        return value

    def validate(self, attrs):
        kind = attrs.get("kind", self.instance.kind if self.instance is not None else None)
        if attrs.get("hmac_secret") and kind not in SIGNING_KINDS:
            # Accepted and ignored, it would let an admin believe the integration is signed.
            signing = " and ".join(Kind(k).label for k in SIGNING_KINDS)
            raise ValidationError(
                {"hmac_secret": f"only {signing} integrations verify a signature"}
            )
        return attrs

    def validate_heartbeat_interval_seconds(self, value):
        if value < MIN_HEARTBEAT_INTERVAL_SECONDS:
            raise ValidationError(f"must be at least {MIN_HEARTBEAT_INTERVAL_SECONDS} seconds")
        return value


class IngestRequestSerializer(serializers.ModelSerializer):
    body = serializers.SerializerMethodField()
    state = serializers.ChoiceField(
        choices=["rejected", "pending", "processed", "failed"], read_only=True
    )

    class Meta:
        model = IngestRequest
        fields = [
            "id",
            "received_at",
            "outcome",
            "status_code",
            "reason",
            "content_type",
            "alert_count",
            "warnings",
            "state",
            "urgent",
            "processed_at",
            "results",
            "error",
            "body",
        ]

    def get_body(self, obj) -> str:
        return redact_secrets(bytes(obj.body).decode("utf-8", "replace"), self.context["token"])


REDACTED = "[redacted]"
# PagerDuty senders put the integration key in the body; it may be cut short (rejections keep
# the first KiB only), so the closing quote is optional.
_ROUTING_KEY = re.compile(r'("routing_key"\s*:\s*")[^"]*')


def redact_secrets(text: str, token: str) -> str:
    """Return a received body with the integration's key taken out, even where it is cut short."""
    text = text.replace(token, REDACTED)
    text = _ROUTING_KEY.sub(lambda m: m[1] + REDACTED, text)
    for length in range(len(token) - 1, 3, -1):  # a truncated body ending in part of the key
        if text.endswith(token[:length]):
            return text[:-length] + REDACTED
    return text


class IntegrationViewSet(Audited, ParseBodyFirst, viewsets.ModelViewSet):
    """Alert sources. Admins configure them; everyone may read (without the secrets)."""

    serializer_class = IntegrationSerializer
    queryset = Integration.objects.select_related("service")
    pagination_class = cursor_by("name")

    @extend_schema(request=None, responses=IntegrationSerializer)
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        """Give the integration a new token; the old URL/key stops working at once."""
        integration = rotate_integration_token(self.get_object())
        record_change(request.user, "updated", integration, {"token": ["[secret]", "[secret]"]})
        return Response(self.get_serializer(integration).data)

    @extend_schema(responses=IngestRequestSerializer(many=True))
    @action(
        detail=True,
        methods=["get"],
        serializer_class=IngestRequestSerializer,
        pagination_class=cursor_by("-received_at", "-id", page_size=50),
    )
    def rejections(self, request, pk=None):
        """List refused requests: when, why, and the first KiB of what was sent."""
        return self._requests(Outcome.REJECTED)

    @extend_schema(responses=IngestRequestSerializer(many=True))
    @action(
        detail=True,
        methods=["get"],
        serializer_class=IngestRequestSerializer,
        pagination_class=cursor_by("-received_at", "-id", page_size=50),
    )
    def requests(self, request, pk=None):
        """List accepted requests: raw bodies, parse warnings, and what became of each alert."""
        return self._requests(Outcome.ACCEPTED)

    def _requests(self, outcome: str) -> Response:
        integration = self.get_object()
        queryset = IngestRequest.objects.filter(integration=integration, outcome=outcome)
        page = self.paginate_queryset(queryset)
        serializer = IngestRequestSerializer(page, many=True, context={"token": integration.token})
        return self.get_paginated_response(serializer.data)

    def perform_destroy(self, instance):
        if instance.alerts.exists():
            raise Conflict(
                "an integration that has received alerts cannot be deleted; disable it instead"
            )
        super().perform_destroy(instance)  # audited


class RoutingRuleSerializer(serializers.ModelSerializer):
    matchers = MatchersField()

    class Meta:
        model = RoutingRule
        fields = ["id", "integration", "position", "name", "matchers", "service", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_matchers(self, value):
        if not value:
            raise ValidationError("a routing rule needs at least one matcher")
        return value


class RoutingRuleViewSet(Audited, ParseBodyFirst, viewsets.ModelViewSet):
    serializer_class = RoutingRuleSerializer
    queryset = RoutingRule.objects.all()
    pagination_class = cursor_by("position", "id")


class SilenceSerializer(serializers.ModelSerializer):
    matchers = MatchersField(required=False)
    created_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    active = serializers.SerializerMethodField()

    class Meta:
        model = Silence
        fields = [
            "id",
            "matchers",
            "service",
            "starts_at",
            "ends_at",
            "comment",
            "created_by",
            "created_at",
            "active",
        ]
        read_only_fields = ["id", "created_by", "created_at"]
        extra_kwargs = {"starts_at": {"required": False}}

    def get_active(self, obj) -> bool:
        now = timezone.now()
        return obj.starts_at <= now < obj.ends_at

    def create(self, validated_data):
        try:
            return create_silence(
                matchers=validated_data.get("matchers") or [],
                service=validated_data.get("service"),
                starts_at=validated_data.get("starts_at"),
                ends_at=validated_data["ends_at"],
                comment=validated_data["comment"],
                by=self.context["request"].user,
            )
        except DjangoValidationError as exc:
            raise ValidationError(exc.messages[0]) from None

    def update(self, instance, validated_data):
        try:
            return update_silence(instance, by=self.context["request"].user, **validated_data)
        except DjangoValidationError as exc:
            raise ValidationError(exc.messages[0]) from None


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("active", bool, description="Only silences in force now.")]
    )
)
class SilenceViewSet(
    ParseBodyFirst,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Silences and maintenance windows. Responders create them and edit (extend) one that has
    not ended, with PATCH or PUT; DELETE expires one now. The rules and the audit entries are
    alerts.services'."""

    serializer_class = SilenceSerializer
    queryset = Silence.objects.select_related("created_by")
    write_role = Role.RESPONDER
    pagination_class = cursor_by("-starts_at", "-id")

    def get_queryset(self):
        queryset = super().get_queryset()
        active = self.request.query_params.get("active")
        if active in ("1", "true"):
            queryset = queryset.active(timezone.now())
        elif active in ("0", "false"):
            queryset = queryset.exclude(pk__in=Silence.objects.active(timezone.now()))
        elif active is not None:
            raise ValidationError("active must be true or false")
        return queryset

    def perform_destroy(self, instance):
        expire_silence(instance, by=self.request.user)


class IntegrationRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Kind.choices)


class AlertSerializer(serializers.ModelSerializer):
    integration = IntegrationRefSerializer(read_only=True)
    incident = serializers.SerializerMethodField()
    raw = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = [
            "id",
            "fingerprint",
            "status",
            "summary",
            "severity",
            "labels",
            "annotations",
            "links",
            "warnings",
            "integration",
            "service",
            "incident",
            "silence",
            "starts_at",
            "ends_at",
            "first_seen",
            "last_seen",
            "resolved_at",
            "occurrences",
            "raw",
        ]

    def get_incident(self, obj) -> int | None:
        return obj.incident.number if obj.incident_id else None

    def get_raw(self, obj) -> str:
        return bytes(obj.raw).decode("utf-8", "replace")


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=["firing", "resolved"]),
            OpenApiParameter("incident", int, description="An incident number."),
            OpenApiParameter("integration", int),
            OpenApiParameter("service", int),
            OpenApiParameter("fingerprint", str),
            OpenApiParameter("silenced", bool),
        ]
    )
)
class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    """Alerts, filterable by ?status=&incident=&integration=&service=&fingerprint=&silenced=."""

    serializer_class = AlertSerializer
    pagination_class = cursor_by("-id")

    def get_queryset(self):
        queryset = Alert.objects.select_related("integration", "incident")
        params = self.request.query_params
        check_query_text(params)
        if status := params.get("status"):
            if status not in AlertStatus.values:
                raise ValidationError(f"status must be one of {', '.join(AlertStatus.values)}")
            queryset = queryset.filter(status=status)
        if number := params.get("incident"):
            if not number.isdigit():
                raise ValidationError("incident must be an incident number")
            queryset = queryset.filter(incident__number=number)
        for name in ("integration", "service"):
            if value := params.get(name):
                if not value.isdigit():
                    raise ValidationError(f"{name} must be an id")
                queryset = queryset.filter(**{f"{name}_id": value})
        if fingerprint := params.get("fingerprint"):
            queryset = queryset.filter(fingerprint=fingerprint)
        if params.get("silenced") in ("1", "true"):
            queryset = queryset.filter(silence__isnull=False)
        return queryset
