"""API: services, incidents, their verbs and timelines. Views access, call a verb, serialize."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.models import Role, User
from incidents import services
from incidents.models import Incident, Service, Source, Status, TimelineEntry
from incidents.selectors import access_incident
from muster.pagination import cursor_by


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
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]


class ServiceViewSet(viewsets.ModelViewSet):
    serializer_class = ServiceSerializer
    queryset = Service.objects.all()
    pagination_class = cursor_by("name")

    def perform_destroy(self, instance):
        if instance.incidents.exists():
            raise ValidationError("a service with incidents cannot be deleted")
        instance.delete()


def _username(user: User | None) -> str | None:
    return user.get_username() if user is not None else None


class IncidentSerializer(serializers.ModelSerializer):
    service = serializers.SerializerMethodField()
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
            "alert_count",
        ]

    def get_service(self, obj):
        return {"id": obj.service_id, "name": obj.service.name}

    def get_acknowledged_by(self, obj):
        return _username(obj.acknowledged_by)

    def get_resolved_by(self, obj):
        return _username(obj.resolved_by)

    def get_assignee(self, obj):
        return _username(obj.assignee)

    def get_merged_into(self, obj):
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


class SnoozeSerializer(serializers.Serializer):
    until = serializers.DateTimeField(required=False)
    minutes = serializers.IntegerField(min_value=1, max_value=7 * 24 * 60, required=False)

    def validate(self, data):
        if ("until" in data) == ("minutes" in data):
            raise ValidationError("give exactly one of 'until' or 'minutes'")
        return data


class ReassignSerializer(serializers.Serializer):
    user = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.filter(is_active=True)
    )


class SeveritySerializer(serializers.Serializer):
    severity = serializers.IntegerField(min_value=1, max_value=5)


class MergeSerializer(serializers.Serializer):
    incidents = serializers.ListField(
        child=serializers.IntegerField(), min_length=1, max_length=100
    )


def _filter_incidents(queryset, params):
    """Apply ?status=&service=&severity=&since=&until=&q= to an incident queryset."""
    problems = []
    if status := params.get("status"):
        wanted = status.split(",")
        if "open" in wanted:
            wanted = [s for s in wanted if s != "open"] + list(Status.values[:2])
        unknown = set(wanted) - set(Status.values)
        if unknown:
            problems.append(f"status must be open, {', '.join(Status.values)}")
        queryset = queryset.filter(status__in=wanted)
    if service := params.get("service"):
        ids = service.split(",")
        if all(i.isdigit() for i in ids):
            queryset = queryset.filter(service_id__in=ids)
        else:
            queryset = queryset.filter(service__name__in=ids)
    if severity := params.get("severity"):
        try:
            levels = [int(s) for s in severity.split(",")]
        except ValueError:
            problems.append("severity must be numbers from 1 to 5, comma separated")
        else:
            queryset = queryset.filter(severity__in=levels)
    for name, lookup in (("since", "created_at__gte"), ("until", "created_at__lt")):
        if value := params.get(name):
            moment = parse_datetime(value)
            if moment is None:
                problems.append(f"{name} must be an ISO 8601 date-time")
            else:
                queryset = queryset.filter(**{lookup: moment})
    if text := params.get("q"):
        queryset = queryset.filter(Q(title__icontains=text))
    if problems:
        raise ValidationError(problems)
    return queryset


class IncidentViewSet(viewsets.ReadOnlyModelViewSet):
    """Incidents by number. Reads need observer; every action needs responder."""

    serializer_class = IncidentSerializer
    lookup_field = "number"
    lookup_value_regex = r"\d+"
    read_role = Role.OBSERVER
    write_role = Role.RESPONDER
    pagination_class = cursor_by("-number")

    def get_queryset(self):
        queryset = Incident.objects.select_related(
            "service", "acknowledged_by", "resolved_by", "assignee", "merged_into"
        ).annotate(alert_count=Count("alerts"))
        if self.action == "list":
            queryset = _filter_incidents(queryset, self.request.query_params)
        return queryset

    def _incident(self, number) -> Incident:
        return access_incident(self.request.user, int(number), role=Role.RESPONDER)

    def _answer(self, incident: Incident, status: int = 200) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=incident.pk)).data, status)

    def create(self, request):
        """Open an incident by hand."""
        data = _valid(NewIncidentSerializer, request)
        incident = services.open_incident(
            data["service"],
            title=data["title"],
            severity=data["severity"],
            source=Source.API,
            by=request.user,
        )
        return self._answer(incident, 201)

    @action(detail=True, methods=["post"])
    def acknowledge(self, request, number=None):
        incident = services.acknowledge_incident(
            self._incident(number), by=request.user, source=Source.API
        )
        return self._answer(incident)

    @action(detail=True, methods=["post"])
    def unacknowledge(self, request, number=None):
        incident = services.unacknowledge_incident(
            self._incident(number), by=request.user, source=Source.API
        )
        return self._answer(incident)

    @action(detail=True, methods=["post"])
    def resolve(self, request, number=None):
        data = _valid(ResolveSerializer, request)
        incident = services.resolve_incident(
            self._incident(number), by=request.user, source=Source.API, note=data["note"]
        )
        return self._answer(incident)

    @action(detail=True, methods=["post"])
    def snooze(self, request, number=None):
        data = _valid(SnoozeSerializer, request)
        until = data.get("until") or timezone.now() + timedelta(minutes=data["minutes"])
        incident = services.snooze_incident(
            self._incident(number), until=until, by=request.user, source=Source.API
        )
        return self._answer(incident)

    @action(detail=True, methods=["post"])
    def escalate(self, request, number=None):
        incident = services.escalate_incident(
            self._incident(number), by=request.user, source=Source.API
        )
        return self._answer(incident)

    @action(detail=True, methods=["post"])
    def reassign(self, request, number=None):
        data = _valid(ReassignSerializer, request)
        incident = services.reassign_incident(
            self._incident(number), to=data["user"], by=request.user, source=Source.API
        )
        return self._answer(incident)

    @action(detail=True, methods=["post"])
    def severity(self, request, number=None):
        data = _valid(SeveritySerializer, request)
        incident = services.set_severity(
            self._incident(number), severity=data["severity"], by=request.user, source=Source.API
        )
        return self._answer(incident)

    @action(detail=True, methods=["post"])
    def merge(self, request, number=None):
        data = _valid(MergeSerializer, request)
        others = [access_incident(request.user, n, role=Role.RESPONDER) for n in data["incidents"]]
        incident = services.merge_incidents(
            self._incident(number), others, by=request.user, source=Source.API
        )
        return self._answer(incident)

    @action(detail=True, methods=["post"], serializer_class=NoteSerializer)
    def notes(self, request, number=None):
        data = _valid(NoteSerializer, request)
        entry = services.add_note(
            self._incident(number), text=data["text"], by=request.user, source=Source.API
        )
        return Response(TimelineEntrySerializer(entry).data, status=201)

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
