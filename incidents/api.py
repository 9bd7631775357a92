"""API: services, incidents, their verbs and timelines. Views access, call a verb, serialize."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.api_fields import PersonField
from accounts.models import Role, User
from core.api_errors import Conflict, ParseBodyFirst, check_query_text
from core.moments import parse_moment
from core.pagination import cursor_by
from incidents import opening, services
from incidents.chat_settings import chat_settings_errors
from incidents.filters import OPEN, filter_incidents
from incidents.models import Incident, Service, Source, Status, TimelineEntry
from incidents.selectors import IncidentNotFound, access_incident

CHAT_FIELDS = (
    "slack_channel_mode",
    "slack_channel",
    "mattermost_channel_mode",
    "mattermost_channel",
)

MODE_HELP = (
    "Where this service's incidents are told on {platform} (once it is configured): "
    "`channel-per-incident` (each its own channel; the shared channel meanwhile), `shared` "
    "(only the shared channel, which it then needs) or `off`."
)


class ServiceSerializer(serializers.ModelSerializer):
    group_by_labels = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=20
    )

    class Meta:
        model = Service
        fields = [
            "id",
            "name",
            "description",
            "urgency_override",
            "auto_resolve",
            "ack_timeout_minutes",
            "group_by_labels",
            "slack_channel_mode",
            "slack_channel",
            "mattermost_channel_mode",
            "mattermost_channel",
            "archive_chat_channels",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {
            "slack_channel_mode": {"help_text": MODE_HELP.format(platform="Slack")},
            "mattermost_channel_mode": {"help_text": MODE_HELP.format(platform="Mattermost")},
        }

    def validate(self, attrs):
        """A shared channel's id has its platform's shape; `shared` mode needs one."""
        values = {f: getattr(self.instance, f) for f in CHAT_FIELDS} if self.instance else {}
        values.update({f: attrs[f] for f in CHAT_FIELDS if f in attrs})
        errors = chat_settings_errors(values)
        if errors:
            raise ValidationError(errors)
        return attrs


class ServiceViewSet(ParseBodyFirst, viewsets.ModelViewSet):
    serializer_class = ServiceSerializer
    queryset = Service.objects.all()
    pagination_class = cursor_by("name")

    def perform_destroy(self, instance):
        if instance.incidents.exists():
            raise Conflict("A service with incidents cannot be deleted.")
        instance.delete()  # integrations or alerts still on it: ProtectedError, answered 409


def _username(user: User | None) -> str | None:
    return user.get_username() if user is not None else None


class ServiceRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class IncidentSerializer(serializers.ModelSerializer):
    service = ServiceRefSerializer(read_only=True)
    acknowledged_by = serializers.SerializerMethodField()
    resolved_by = serializers.SerializerMethodField()
    assignee = serializers.SerializerMethodField()
    merged_into = serializers.SerializerMethodField()
    alert_count = serializers.IntegerField(read_only=True, default=None)

    class Meta:
        model = Incident
        fields = [
            "number",
            "title",
            "status",
            "severity",
            "urgency",
            "service",
            "created_at",
            "created_via",
            "triggered_at",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolved_by",
            "assignee",
            "snoozed_until",
            "merged_into",
            "unpaged",
            "alert_count",
        ]

    def get_acknowledged_by(self, obj) -> str | None:
        return _username(obj.acknowledged_by)

    def get_resolved_by(self, obj) -> str | None:
        return _username(obj.resolved_by)

    def get_assignee(self, obj) -> str | None:
        return _username(obj.assignee)

    def get_merged_into(self, obj) -> int | None:
        return obj.merged_into.number if obj.merged_into_id else None


class NewIncidentSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=1024)
    service = serializers.PrimaryKeyRelatedField(queryset=Service.objects.all())
    severity = serializers.IntegerField(min_value=1, max_value=5, default=3)


class TimelineEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = TimelineEntry
        fields = ["id", "at", "kind", "actor_name", "source", "message", "data"]


class NoteSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=10_000)


class ResolveSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=10_000, required=False, allow_blank=True, default="")


MAX_SNOOZE = 7 * 24 * 60  # minutes


class SnoozeSerializer(serializers.Serializer):
    until = serializers.DateTimeField(required=False)
    minutes = serializers.IntegerField(min_value=1, max_value=MAX_SNOOZE, required=False)

    def validate(self, data):
        if ("until" in data) == ("minutes" in data):
            raise ValidationError("give exactly one of 'until' or 'minutes'")
        if "until" in data and data["until"] > timezone.now() + timedelta(minutes=MAX_SNOOZE):
            raise ValidationError({"until": "a snooze can last at most 7 days"})
        return data


class ReassignSerializer(serializers.Serializer):
    user = PersonField()


class SeveritySerializer(serializers.Serializer):
    severity = serializers.IntegerField(min_value=1, max_value=5)


class MergeSerializer(serializers.Serializer):
    incidents = serializers.ListField(
        child=serializers.IntegerField(), min_length=1, max_length=100
    )


def _filter_incidents(queryset, params):
    """Apply ?status=&service=&severity=&since=&until=&q= to an incident queryset."""
    check_query_text(params)
    problems = []
    statuses = services = severities = None
    bounds: dict[str, datetime | None] = {}
    if status := params.get("status"):
        statuses = status.split(",")
        if set(statuses) - {OPEN, *Status.values}:
            problems.append(f"status must be {OPEN}, {', '.join(Status.values)}")
    if service := params.get("service"):
        services = service.split(",")
    if severity := params.get("severity"):
        try:
            severities = [int(s) for s in severity.split(",")]
        except ValueError:
            severities = []
        if not severities or not all(1 <= level <= 5 for level in severities):
            problems.append("severity must be numbers from 1 to 5, comma separated")
    for name in ("since", "until"):
        if value := params.get(name):
            bounds[name] = parse_moment(value)
            if bounds[name] is None:
                problems.append(f"{name} must be an ISO 8601 date-time, like 2025-03-01T12:00:00Z")
    if problems:
        raise ValidationError(problems)
    by_id = services is not None and all(i.isdigit() for i in services)
    return filter_incidents(
        queryset,
        statuses=statuses,
        service_ids=[int(i) for i in services] if by_id else None,
        service_names=services if not by_id else None,
        severities=severities,
        since=bounds.get("since"),
        until=bounds.get("until"),
        title=params.get("q", ""),
    )


_LIST_FILTERS = [
    OpenApiParameter("status", str, description="Comma separated: open, triggered, …"),
    OpenApiParameter("service", str, description="Comma separated service ids or names."),
    OpenApiParameter("severity", str, description="Comma separated severities, 1 to 5."),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="Created at or after."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Created before."),
    OpenApiParameter("q", str, description="Text in the title."),
]
_NUMBER = OpenApiParameter("number", int, OpenApiParameter.PATH, description="Incident number")
_VERB = extend_schema(request=None, responses=IncidentSerializer, parameters=[_NUMBER])


def _verb_taking(serializer_class):
    return extend_schema(
        request=serializer_class, responses=IncidentSerializer, parameters=[_NUMBER]
    )


def incidents_for_api():
    """Incidents as the API reads them: with their people, merge target and alert count."""
    return Incident.objects.select_related(
        "service", "acknowledged_by", "resolved_by", "assignee", "merged_into"
    ).annotate(alert_count=Count("alerts"))


def incident_data(incident: Incident) -> dict:
    """Return `incident` as the API shows it, read afresh."""
    return IncidentSerializer(incidents_for_api().get(pk=incident.pk)).data


@extend_schema_view(
    list=extend_schema(parameters=_LIST_FILTERS), retrieve=extend_schema(parameters=[_NUMBER])
)
class IncidentViewSet(ParseBodyFirst, viewsets.ReadOnlyModelViewSet):
    """Incidents by number. Reads need observer; every action needs responder."""

    serializer_class = IncidentSerializer
    lookup_field = "number"
    lookup_value_regex = r"\d+"
    read_role = Role.OBSERVER
    write_role = Role.RESPONDER
    pagination_class = cursor_by("-number")

    def get_queryset(self):
        queryset = incidents_for_api()
        if self.action == "list":
            queryset = _filter_incidents(queryset, self.request.query_params)
        return queryset

    def _incident(self, number) -> Incident:
        user = self.request.user
        assert user.is_authenticated  # RolePermission let only a signed-in person in
        return access_incident(user, int(number), role=Role.RESPONDER)

    def _answer(self, incident: Incident, status: int = 200) -> Response:
        return Response(incident_data(incident), status)

    @extend_schema(request=NewIncidentSerializer, responses={201: IncidentSerializer})
    def create(self, request):
        """Open an incident by hand."""
        data = _valid(NewIncidentSerializer, request)
        incident = opening.open_incident(
            data["service"],
            title=data["title"],
            severity=data["severity"],
            source=Source.API,
            by=request.user,
        )
        return self._answer(incident, 201)

    @_VERB
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, number=None):
        incident = services.acknowledge_incident(
            self._incident(number), by=request.user, source=Source.API
        )
        return self._answer(incident)

    @_VERB
    @action(detail=True, methods=["post"])
    def unacknowledge(self, request, number=None):
        incident = services.unacknowledge_incident(
            self._incident(number), by=request.user, source=Source.API
        )
        return self._answer(incident)

    @_verb_taking(ResolveSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, number=None):
        data = _valid(ResolveSerializer, request)
        incident = services.resolve_incident(
            self._incident(number), by=request.user, source=Source.API, note=data["note"]
        )
        return self._answer(incident)

    @_verb_taking(SnoozeSerializer)
    @action(detail=True, methods=["post"])
    def snooze(self, request, number=None):
        data = _valid(SnoozeSerializer, request)
        until = data.get("until") or timezone.now() + timedelta(minutes=data["minutes"])
        incident = services.snooze_incident(
            self._incident(number), until=until, by=request.user, source=Source.API
        )
        return self._answer(incident)

    @_verb_taking(ReassignSerializer)
    @action(detail=True, methods=["post"])
    def reassign(self, request, number=None):
        data = _valid(ReassignSerializer, request)
        incident = services.reassign_incident(
            self._incident(number), to=data["user"], by=request.user, source=Source.API
        )
        return self._answer(incident)

    @_verb_taking(SeveritySerializer)
    @action(detail=True, methods=["post"])
    def severity(self, request, number=None):
        data = _valid(SeveritySerializer, request)
        incident = services.set_severity(
            self._incident(number), severity=data["severity"], by=request.user, source=Source.API
        )
        return self._answer(incident)

    @_verb_taking(MergeSerializer)
    @action(detail=True, methods=["post"])
    def merge(self, request, number=None):
        data = _valid(MergeSerializer, request)
        others, missing = [], []
        for other in data["incidents"]:
            try:
                others.append(access_incident(request.user, other, role=Role.RESPONDER))
            except IncidentNotFound as exc:
                missing.append(str(exc))
        if missing:
            raise ValidationError({"incidents": missing})
        incident = services.merge_incidents(
            self._incident(number), others, by=request.user, source=Source.API
        )
        return self._answer(incident)

    @extend_schema(
        request=NoteSerializer, responses={201: TimelineEntrySerializer}, parameters=[_NUMBER]
    )
    @action(detail=True, methods=["post"], serializer_class=NoteSerializer)
    def notes(self, request, number=None):
        data = _valid(NoteSerializer, request)
        entry = services.add_note(
            self._incident(number), text=data["text"], by=request.user, source=Source.API
        )
        return Response(TimelineEntrySerializer(entry).data, status=201)

    @extend_schema(parameters=[_NUMBER], responses=TimelineEntrySerializer(many=True))
    @action(
        detail=True,
        methods=["get"],
        serializer_class=TimelineEntrySerializer,
        pagination_class=cursor_by("at", "id", page_size=200),
    )
    def timeline(self, request, number=None):
        incident = access_incident(request.user, int(number))
        page = self.paginate_queryset(incident.timeline.all())
        return self.get_paginated_response(TimelineEntrySerializer(page, many=True).data)


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
