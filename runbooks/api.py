"""API: runbooks and their versions, actions and their runs, graph templates, and what an
incident gets (its runbook, its graph links). Everyone reads; admins write; responders run.

Action URLs and headers are admin-only configuration: others see an action's target (host and
path) but not its query string or header values, which often hold tokens.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import CREATED, Audited, record_change, snapshot
from accounts.models import Role
from alerts.matchers_field import MatchersField
from incidents.models import Service, Source
from incidents.selectors import access_incident
from muster.api_errors import Conflict, ParseBodyFirst, check_query_text, error_response
from muster.pagination import cursor_by
from runbooks import actions, templating
from runbooks.graphs import GraphTemplateError, check_url_template, graph_links
from runbooks.models import (
    MAX_ACTION_TIMEOUT,
    MAX_RUNBOOK_BODY,
    Action,
    ActionRun,
    ContentType,
    GraphTemplate,
    Runbook,
    RunbookVersion,
    RunRole,
)
from runbooks.services import matching_runbook

MAX_BODY = MAX_RUNBOOK_BODY


def _is_admin(serializer) -> bool:
    request = serializer.context.get("request")
    return bool(request and request.user.has_role(Role.ADMIN))


def _author(serializer):
    request = serializer.context.get("request")
    return request.user if request is not None else None


# --- runbooks ---------------------------------------------------------------------------------


class ActionSummarySerializer(serializers.ModelSerializer):
    target = serializers.SerializerMethodField()

    class Meta:
        model = Action
        fields = ["id", "name", "description", "method", "target", "role", "timeout_seconds"]

    def get_target(self, obj) -> str:
        return actions.target(obj.url)


class RunbookSerializer(serializers.ModelSerializer):
    service = serializers.PrimaryKeyRelatedField(
        queryset=Service.objects.all(), allow_null=True, required=False
    )
    matchers = MatchersField(required=False)
    body = serializers.CharField(max_length=MAX_BODY, allow_blank=True, required=False)
    actions = ActionSummarySerializer(many=True, read_only=True)

    class Meta:
        model = Runbook
        fields = [
            "id",
            "title",
            "service",
            "matchers",
            "body",
            "position",
            "version",
            "actions",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "version", "created_at", "updated_at"]

    def create(self, validated_data):
        runbook = Runbook(**validated_data)
        runbook.save(author=_author(self))
        return runbook

    def update(self, instance, validated_data):
        for name, value in validated_data.items():
            setattr(instance, name, value)
        instance.save(author=_author(self))
        return instance


class RunbookVersionSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = RunbookVersion
        fields = ["number", "title", "body", "matchers", "service", "author", "at"]


# --- actions ----------------------------------------------------------------------------------


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
    url = serializers.CharField(max_length=2000)
    target = serializers.SerializerMethodField()
    headers = serializers.JSONField(required=False, write_only=True)
    header_names = serializers.SerializerMethodField()
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
        return data

    def get_target(self, obj) -> str:
        return actions.target(obj.url)

    def get_header_names(self, obj) -> list[str]:
        return sorted(obj.headers)

    def validate_url(self, value):
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


def _action_snapshot(instance: Action) -> dict:
    return snapshot(instance, extra={"headers": _masked_headers(instance.headers or {})})


class ActionRunSerializer(serializers.ModelSerializer):
    incident = serializers.IntegerField(source="incident.number", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    target = serializers.SerializerMethodField()

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


class RunRequestSerializer(serializers.Serializer):
    incident = serializers.IntegerField(min_value=1, help_text="The incident's number.")


# --- views ------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "service", str, description="A service id, or `none` for any-service runbooks."
            )
        ]
    )
)
class RunbookViewSet(Audited, ParseBodyFirst, viewsets.ModelViewSet):
    """Runbooks: Markdown for incidents of a service whose alerts match the matchers. Every
    change keeps a version (`versions/`); `actions/` lists and adds automation actions."""

    serializer_class = RunbookSerializer
    queryset = Runbook.objects.select_related("service").prefetch_related("actions")
    pagination_class = cursor_by("position", "id")

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            params = self.request.query_params
            check_query_text(params)
            service = params.get("service")
            if service == "none":
                queryset = queryset.filter(service__isnull=True)
            elif service:
                if not service.isdigit():
                    raise ValidationError("service must be a service id or none")
                queryset = queryset.filter(service_id=int(service))
        return queryset

    def _snapshot(self, instance) -> dict:
        values = super()._snapshot(instance)
        values.pop("updated_at", None)
        return values

    @extend_schema(responses=RunbookVersionSerializer(many=True))
    @action(
        detail=True,
        methods=["get"],
        serializer_class=RunbookVersionSerializer,
        pagination_class=cursor_by("-number"),
    )
    def versions(self, request, pk=None):
        """The runbook's history, newest first: each save's title, body, matchers and author."""
        runbook = self.get_object()
        page = self.paginate_queryset(runbook.versions.select_related("author"))
        return self.get_paginated_response(RunbookVersionSerializer(page, many=True).data)

    @extend_schema(methods=["GET"], responses=ActionSerializer(many=True))
    @extend_schema(methods=["POST"], request=ActionSerializer, responses={201: ActionSerializer})
    @action(detail=True, methods=["get", "post"], serializer_class=ActionSerializer)
    def actions(self, request, pk=None):
        """The runbook's automation actions (GET); add one (POST, admins)."""
        runbook = self.get_object()
        context = {**self.get_serializer_context(), "runbook": runbook}
        if request.method == "GET":
            found = runbook.actions.all()
            return Response(ActionSerializer(found, many=True, context=context).data)
        serializer = ActionSerializer(data=request.data, context=context)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            created = serializer.save(runbook=runbook)
            record_change(request.user, CREATED, created, _action_snapshot(created))
        return Response(ActionSerializer(created, context=context).data, status=201)


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
        values = _action_snapshot(instance)
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
            return self.get_paginated_response(ActionRunSerializer(page, many=True).data)
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
        return Response(ActionRunSerializer(run).data, status=201)


# --- graph templates --------------------------------------------------------------------------


class GraphTemplateSerializer(serializers.ModelSerializer):
    service = serializers.PrimaryKeyRelatedField(
        queryset=Service.objects.all(), allow_null=True, required=False
    )

    class Meta:
        model = GraphTemplate
        fields = [
            "id",
            "service",
            "name",
            "url_template",
            "image_url_template",
            "position",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]

    def validate_url_template(self, value):
        try:
            return check_url_template(value)
        except GraphTemplateError as exc:
            raise ValidationError(str(exc)) from None

    def validate_image_url_template(self, value):
        if not value:
            return value
        return self.validate_url_template(value)


class GraphTemplateViewSet(Audited, ParseBodyFirst, viewsets.ModelViewSet):
    """Graph link templates: `{label}` placeholders filled (URL-encoded) from an incident's
    first alert's labels."""

    serializer_class = GraphTemplateSerializer
    queryset = GraphTemplate.objects.all()
    pagination_class = cursor_by("position", "id")


# --- what an incident gets --------------------------------------------------------------------


class IncidentRunbookSerializer(serializers.Serializer):
    incident = serializers.IntegerField()
    runbook = RunbookSerializer(allow_null=True)


class GraphLinkSerializer(serializers.Serializer):
    name = serializers.CharField()
    url = serializers.URLField()
    image_url = serializers.URLField(allow_null=True)


class IncidentGraphsSerializer(serializers.Serializer):
    incident = serializers.IntegerField()
    graphs = GraphLinkSerializer(many=True)


class IncidentRunbookView(APIView):
    """The runbook that matches an incident (Markdown), with its actions; null when none does."""

    serializer_class = IncidentRunbookSerializer

    @extend_schema(responses=IncidentRunbookSerializer)
    def get(self, request, number: int):
        incident = access_incident(request.user, int(number))
        runbook = matching_runbook(incident)
        data = RunbookSerializer(runbook, context={"request": request}).data if runbook else None
        return Response({"incident": incident.number, "runbook": data})


class IncidentGraphsView(APIView):
    """The incident's graph links: its service's templates and the links its alerts carried."""

    serializer_class = IncidentGraphsSerializer

    @extend_schema(responses=IncidentGraphsSerializer)
    def get(self, request, number: int):
        incident = access_incident(request.user, int(number))
        links = [
            {"name": link.name, "url": link.url, "image_url": link.image_url}
            for link in graph_links(incident)
        ]
        return Response({"incident": incident.number, "graphs": links})
