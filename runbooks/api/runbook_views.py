"""API: runbooks and their versions, and the runbook an incident gets. Everyone reads; admins
write."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import CREATED, Audited, record_change
from alerts.matchers_field import MatchersField
from core.api_errors import ParseBodyFirst, check_query_text
from core.pagination import cursor_by
from incidents.models import Service
from incidents.selectors import access_incident
from runbooks import actions
from runbooks.api.action_views import ActionSerializer, action_snapshot
from runbooks.models import MAX_RUNBOOK_BODY, Action, Runbook, RunbookVersion
from runbooks.services import matching_runbook


def _author(serializer):
    request = serializer.context.get("request")
    return request.user if request is not None else None


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
    body = serializers.CharField(max_length=MAX_RUNBOOK_BODY, allow_blank=True, required=False)
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
            record_change(request.user, CREATED, created, action_snapshot(created))
        return Response(ActionSerializer(created, context=context).data, status=201)


class IncidentRunbookSerializer(serializers.Serializer):
    incident = serializers.IntegerField()
    runbook = RunbookSerializer(allow_null=True)


class IncidentRunbookView(APIView):
    """The runbook that matches an incident (Markdown), with its actions; null when none does."""

    serializer_class = IncidentRunbookSerializer

    @extend_schema(responses=IncidentRunbookSerializer)
    def get(self, request, number: int):
        incident = access_incident(request.user, int(number))
        runbook = matching_runbook(incident)
        data = RunbookSerializer(runbook, context={"request": request}).data if runbook else None
        return Response({"incident": incident.number, "runbook": data})
