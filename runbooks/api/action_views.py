"""API: automation actions and their runs. Everyone reads; admins configure; responders run.

Action URLs and headers are admin-only configuration: others see an action's target (host and
path) but not its query string or header values, which often hold tokens. Payload templates,
request bodies and response excerpts are for responders and admins (null for observers).
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.audit import Audited, snapshot
from accounts.models import Role
from core.api_errors import Conflict, ParseBodyFirst, error_response
from core.pagination import cursor_by
from incidents.models import Source
from incidents.selectors import access_incident
from runbooks import actions, templating
from runbooks.models import MAX_ACTION_TIMEOUT, Action, ActionRun, ContentType, RunRole
from runbooks.services import may_read_payloads


def _is_admin(serializer) -> bool:
    request = serializer.context.get("request")
    return bool(request and request.user.has_role(Role.ADMIN))


def _reads_payloads(serializer) -> bool:
    request = serializer.context.get("request")
    return bool(request and may_read_payloads(request.user))


# Inline in the schema: as an enum component it would clash with accounts' "role".
@extend_schema_field({"type": "string", "enum": list(RunRole.values)})
class RunRoleField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=RunRole.choices, **kwargs)


class ActionSerializer(serializers.ModelSerializer):
    role = RunRoleField(
        required=False, help_text="The role that may run the action: responder or admin."
    )
    runbook = serializers.PrimaryKeyRelatedField(read_only=True)
    # Read as null by all but admins (to_representation); written by admins, never as null.
    url = serializers.CharField(
        max_length=2000,
        allow_null=True,
        help_text="Where the action calls; null for everyone but admins (it may carry a token).",
    )
    target = serializers.SerializerMethodField()
    headers = serializers.JSONField(required=False, write_only=True)
    header_names = serializers.SerializerMethodField()
    payload_template = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="The body sent, with placeholders; null for observers (it may hold tokens).",
    )
    timeout_seconds = serializers.IntegerField(
        min_value=1, max_value=MAX_ACTION_TIMEOUT, required=False
    )

    class Meta:
        model = Action
        fields = [
            "id",
            "runbook",
            "name",
            "description",
            "method",
            "url",
            "target",
            "content_type",
            "payload_template",
            "headers",
            "header_names",
            "timeout_seconds",
            "role",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "runbook", "created_at", "updated_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not _is_admin(self):
            data["url"] = None  # it may carry a token; the target says where it goes
        if not _reads_payloads(self):
            data["payload_template"] = None
        return data

    def validate_payload_template(self, value):
        return value or ""

    def get_target(self, obj) -> str:
        return actions.target(obj.url)

    def get_header_names(self, obj) -> list[str]:
        return sorted(obj.headers)

    def validate_url(self, value):
        if value is None:
            raise ValidationError("This field may not be null.")
        try:
            return actions.check_url(value)
        except actions.ActionError as exc:
            raise ValidationError(str(exc)) from None

    def validate_headers(self, value):
        try:
            return actions.check_headers(value)
        except actions.ActionError as exc:
            raise ValidationError(str(exc)) from None

    def validate(self, data):
        runbook = self.context.get("runbook") or getattr(self.instance, "runbook", None)
        name = data.get("name")
        if runbook is not None and name is not None:
            clash = Action.objects.filter(runbook=runbook, name=name)
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise ValidationError({"name": f"this runbook already has an action {name!r}"})
        template = data.get("payload_template", getattr(self.instance, "payload_template", ""))
        content_type = data.get(
            "content_type", getattr(self.instance, "content_type", ContentType.JSON)
        )
        try:
            templating.check_template(template, content_type)
        except templating.TemplateError as exc:
            raise ValidationError({"payload_template": str(exc)}) from None
        return data


def _masked_headers(headers: dict) -> dict[str, str]:
    """Header values as keyed hashes: the audit log shows that one changed, never its value."""
    key = settings.SECRET_KEY.encode()
    return {
        name: "[secret " + hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:12] + "]"
        for name, value in sorted(headers.items())
    }


def action_snapshot(instance: Action) -> dict:
    return snapshot(instance, extra={"headers": _masked_headers(instance.headers or {})})


class ActionRunSerializer(serializers.ModelSerializer):
    incident = serializers.IntegerField(source="incident.number", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    target = serializers.SerializerMethodField()
    request_body = serializers.CharField(
        read_only=True, allow_null=True, help_text="What was sent; null for observers."
    )
    response_excerpt = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The answer's first 2 KiB; null for observers.",
    )

    class Meta:
        model = ActionRun
        fields = [
            "id",
            "action",
            "action_name",
            "incident",
            "requested_by",
            "status",
            "method",
            "target",
            "request_body",
            "http_status",
            "response_excerpt",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_target(self, obj) -> str:
        return actions.target(obj.url)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not _reads_payloads(self):
            data["request_body"] = data["response_excerpt"] = None
        return data


class RunRequestSerializer(serializers.Serializer):
    incident = serializers.IntegerField(min_value=1, help_text="The incident's number.")


class ActionViewSet(
    Audited,
    ParseBodyFirst,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """One automation action (admins change it), and its runs: GET lists them, POST runs the
    action for an incident (responders, or admins where the action says so)."""

    serializer_class = ActionSerializer
    queryset = Action.objects.select_related("runbook", "runbook__service")

    def get_required_role(self, request) -> str | None:
        if self.action == "runs" and request.method == "POST":
            return Role.RESPONDER
        return None

    def _snapshot(self, instance) -> dict:
        values = action_snapshot(instance)
        values.pop("updated_at", None)
        return values

    @extend_schema(methods=["GET"], responses=ActionRunSerializer(many=True))
    @extend_schema(
        methods=["POST"], request=RunRequestSerializer, responses={201: ActionRunSerializer}
    )
    @action(
        detail=True,
        methods=["get", "post"],
        serializer_class=ActionRunSerializer,
        pagination_class=cursor_by("-created_at", "-id"),
    )
    def runs(self, request, pk=None):
        """The action's runs, newest first (GET); run it now for an incident (POST)."""
        found = self.get_object()
        if request.method == "GET":
            runs = ActionRun.objects.filter(action=found).select_related("incident", "requested_by")
            page = self.paginate_queryset(runs)
            context = self.get_serializer_context()
            return self.get_paginated_response(
                ActionRunSerializer(page, many=True, context=context).data
            )
        serializer = RunRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        incident = access_incident(
            request.user, serializer.validated_data["incident"], role=Role.RESPONDER
        )
        try:
            run = actions.request_run(found, incident, request.user, source=Source.API)
        except actions.ActionRefused as exc:
            return error_response(403, str(exc))
        except actions.ActionBusy as exc:
            raise Conflict(str(exc)) from None
        except actions.ActionError as exc:
            raise ValidationError(str(exc)) from None
        return Response(
            ActionRunSerializer(run, context=self.get_serializer_context()).data, status=201
        )
