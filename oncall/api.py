"""API: teams, schedules and their layers and overrides, who is on call, escalation policies,
the policy of each service, my contact methods, rules and settings, shifts, the audit log.

Everyone reads; responders create and remove overrides and manage their own contact methods and
notification rules; admins configure the rest. Every configuration change is audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.relations import PKOnlyObject
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role, User
from incidents.api import _parse_moment
from incidents.models import Service, Urgency
from muster.api_errors import Conflict, ParseBodyFirst, check_query_text
from muster.pagination import cursor_by
from oncall import audit, people, rotations, schedules
from oncall.audit import CREATED, DELETED, UPDATED, Audited, diff, record_change, snapshot
from oncall.models import (
    AuditEntry,
    ContactMethod,
    EscalationPolicy,
    EscalationStep,
    Layer,
    LayerParticipant,
    Membership,
    NotificationRule,
    Override,
    Schedule,
    ServicePolicy,
    Team,
)

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 7
MAX_PARTICIPANTS = 100
MAX_RESTRICTIONS = 28
MAX_STEPS = 20


def _active_users():
    return User.objects.filter(is_active=True)


def _user_ref(user: User) -> dict:
    return {"id": user.pk, "username": user.get_username(), "name": user.get_full_name()}


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()


class ScheduleRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


def _schedule_ref(schedule: Schedule) -> dict:
    return {"id": schedule.pk, "name": schedule.name}


def ical_url(kind: str, token: str) -> str:
    return settings.PUBLIC_URL + reverse(f"ical-{kind}", kwargs={"token": token})


class LocalDateTimeField(serializers.DateTimeField):
    """A date-time that may come without an offset: it is then local to the schedule's zone
    (the serializer's `validate` makes it aware). Output is always UTC with its offset."""

    def enforce_timezone(self, value):
        return value if timezone.is_naive(value) else super().enforce_timezone(value)


def _in_zone(value: datetime | None, zone_name: str) -> datetime | None:
    if value is None or timezone.is_aware(value):
        return value
    return value.replace(tzinfo=ZoneInfo(zone_name))


def _protect_targets(obj, field: str) -> None:
    """Refuse to delete a schedule or team an escalation step still pages."""
    policies = sorted(
        EscalationPolicy.objects.filter(**{f"steps__{field}": obj})
        .values_list("name", flat=True)
        .distinct()
    )
    if policies:
        raise Conflict(
            f"{obj} is a target of the escalation policies {', '.join(policies)}; "
            "take it out of their steps first."
        )


# --- teams ------------------------------------------------------------------------------------


class MembershipSerializer(serializers.Serializer):
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.all())
    is_admin = serializers.BooleanField(default=False)


class TeamSerializer(serializers.ModelSerializer):
    members = MembershipSerializer(many=True, required=False, source="membership_set")

    class Meta:
        model = Team
        fields = ["id", "name", "members"]
        read_only_fields = ["id"]

    def validate_members(self, value):
        users = [m["user"].pk for m in value]
        if len(users) != len(set(users)):
            raise ValidationError("a person can be in a team once")
        return value

    def _set_members(self, team: Team, members) -> None:
        if members is None:
            return
        team.membership_set.all().delete()
        Membership.objects.bulk_create(
            Membership(team=team, user=m["user"], is_admin=m.get("is_admin", False))
            for m in members
        )

    def create(self, validated_data):
        members = validated_data.pop("membership_set", [])
        team = Team.objects.create(**validated_data)
        self._set_members(team, members)
        return team

    def update(self, instance, validated_data):
        members = validated_data.pop("membership_set", None)
        instance = super().update(instance, validated_data)
        self._set_members(instance, members)
        return instance


class TeamViewSet(Audited, ParseBodyFirst, viewsets.ModelViewSet):
    """Teams of people. Everyone reads; admins configure."""

    serializer_class = TeamSerializer
    queryset = Team.objects.prefetch_related("membership_set")
    pagination_class = cursor_by("name")

    def audit_extra(self, instance) -> dict:
        members = instance.membership_set.order_by("user_id").values_list("user_id", "is_admin")
        return {"members": [list(m) for m in members]}

    def perform_destroy(self, instance):
        _protect_targets(instance, "teams")
        super().perform_destroy(instance)


# --- layers -----------------------------------------------------------------------------------


@extend_schema_field(
    inline_serializer(
        "Restriction",
        {
            "weekdays": serializers.ListField(
                child=serializers.IntegerField(min_value=0, max_value=6),
                help_text="0 Monday … 6 Sunday; every day when left out.",
            ),
            "start": serializers.CharField(help_text="Local time, like 09:00."),
            "end": serializers.CharField(
                help_text="Local time, like 17:00; at or before start: into the next day."
            ),
        },
        many=True,
    )
)
class RestrictionsField(serializers.JSONField):
    """A layer's restrictions: windows of the local week, checked and stored normalized."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, list):
            raise ValidationError("restrictions must be a list")
        if len(data) > MAX_RESTRICTIONS:
            raise ValidationError(f"at most {MAX_RESTRICTIONS} restrictions")
        problems, out = [], []
        for i, item in enumerate(data):
            try:
                out.append(rotations.restriction_from_dict(item).to_dict())
            except rotations.RestrictionError as exc:
                problems.append(f"restriction {i + 1}: {exc}")
        if problems:
            raise ValidationError(problems)
        return out


class ParticipantsField(serializers.ListField):
    """The layer's people in rotation order, as user ids."""

    child = serializers.PrimaryKeyRelatedField(queryset=_active_users())

    def get_attribute(self, instance):
        return [PKOnlyObject(p.user_id) for p in instance.participants.all()]


class LayerSerializer(serializers.ModelSerializer):
    participants = ParticipantsField(min_length=1, max_length=MAX_PARTICIPANTS)
    restrictions = RestrictionsField(required=False)
    start = LocalDateTimeField(
        help_text="The first handoff. Without an offset it is local to the schedule's zone."
    )
    end = LocalDateTimeField(required=False, allow_null=True)

    class Meta:
        model = Layer
        fields = [
            "id",
            "schedule",
            "name",
            "level",
            "rotation",
            "shift_hours",
            "start",
            "end",
            "restrictions",
            "participants",
        ]
        read_only_fields = ["id"]
        extra_kwargs = {"shift_hours": {"min_value": 1, "max_value": 24 * 366}}

    def validate_schedule(self, value):
        if self.instance is not None and value.pk != self.instance.schedule_id:
            raise ValidationError("a layer cannot move to another schedule")
        return value

    def validate(self, data):
        schedule = data.get("schedule") or getattr(self.instance, "schedule", None)
        zone = schedule.time_zone if schedule else "UTC"
        for name in ("start", "end"):
            if name in data:
                data[name] = _in_zone(data[name], zone)
        start = data.get("start", getattr(self.instance, "start", None))
        end = data.get("end", getattr(self.instance, "end", None))
        if start and end and end <= start:
            raise ValidationError({"end": "must be after start"})
        return data

    def _set_participants(self, layer: Layer, users) -> None:
        if users is None:
            return
        layer.participants.all().delete()
        LayerParticipant.objects.bulk_create(
            LayerParticipant(layer=layer, user=user, position=i) for i, user in enumerate(users)
        )

    def create(self, validated_data):
        users = validated_data.pop("participants")
        layer = Layer.objects.create(**validated_data)
        self._set_participants(layer, users)
        return layer

    def update(self, instance, validated_data):
        users = validated_data.pop("participants", None)
        instance = super().update(instance, validated_data)
        self._set_participants(instance, users)
        return instance


_SCHEDULE_FILTER = OpenApiParameter("schedule", int, description="Only this schedule's.")


@extend_schema_view(list=extend_schema(parameters=[_SCHEDULE_FILTER]))
class LayerViewSet(Audited, ParseBodyFirst, viewsets.ModelViewSet):
    """Schedule layers: rotations of people, with optional restrictions. Admins configure."""

    serializer_class = LayerSerializer
    queryset = Layer.objects.prefetch_related("participants")
    pagination_class = cursor_by("id")

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            queryset = _filter_ids(queryset, self.request.query_params, schedule="schedule_id")
        return queryset

    def audit_extra(self, instance) -> dict:
        return {"participants": list(instance.participants.values_list("user_id", flat=True))}


def _filter_ids(queryset, params, **fields):
    """Apply ?name=<id> filters, refusing values that are not ids."""
    check_query_text(params)
    for name, lookup in fields.items():
        value = params.get(name)
        if value is None:
            continue
        if not value.isdigit():
            raise ValidationError(f"{name} must be an id")
        queryset = queryset.filter(**{lookup: int(value)})
    return queryset


# --- schedules --------------------------------------------------------------------------------


class ScheduleSerializer(serializers.ModelSerializer):
    layers = LayerSerializer(many=True, read_only=True)
    ical_url = serializers.SerializerMethodField(
        help_text="A secret URL calendars subscribe to; rotate it to revoke."
    )

    class Meta:
        model = Schedule
        fields = ["id", "name", "description", "team", "time_zone", "layers", "ical_url"]
        read_only_fields = ["id"]

    def get_ical_url(self, obj) -> str:
        return ical_url("schedule", obj.ical_token)

    def validate_time_zone(self, value):
        try:
            return people.check_time_zone(value)
        except people.ContactMethodError as exc:
            raise ValidationError(str(exc)) from None


class ShiftSerializer(serializers.Serializer):
    user = UserRefSerializer()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    layer = serializers.IntegerField(allow_null=True, help_text="The layer, for a rotation.")
    override = serializers.IntegerField(allow_null=True, help_text="The override, if one.")


class RangeSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class FinalScheduleSerializer(serializers.Serializer):
    schedule = ScheduleRefSerializer()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    shifts = ShiftSerializer(many=True)
    gaps = RangeSerializer(many=True, help_text="Times nobody is on call.")


class NextOnCallSerializer(serializers.Serializer):
    user = UserRefSerializer()
    start = serializers.DateTimeField()


class ScheduleOnCallSerializer(serializers.Serializer):
    schedule = ScheduleRefSerializer()
    at = serializers.DateTimeField()
    on_call = UserRefSerializer(many=True, help_text="Who is on call now (nobody in a gap).")
    until = serializers.DateTimeField(
        allow_null=True, help_text="When they hand off; null if not within 180 days."
    )
    next = NextOnCallSerializer(allow_null=True, help_text="Who takes over next, and when.")


def _shift_data(shift: rotations.Shift, who: dict[int, User]) -> dict:
    return {
        "user": _user_ref(who[shift.user_id]),
        "start": shift.start,
        "end": shift.end,
        "layer": shift.layer_id,
        "override": shift.override_id,
    }


def _on_call_data(entry: schedules.OnCall) -> dict:
    return {
        "schedule": _schedule_ref(entry.schedule),
        "at": entry.at,
        "on_call": [_user_ref(u) for u in entry.people],
        "until": entry.until,
        "next": (
            {"user": _user_ref(entry.next_person), "start": entry.next_start}
            if entry.next_person
            else None
        ),
    }


def _range(params, default_days: int = DEFAULT_RANGE_DAYS) -> tuple[datetime, datetime]:
    """Return ?start=&end= (default: now and `default_days` later), at most a year apart."""
    check_query_text(params)
    problems = []
    bounds = {}
    for name in ("start", "end"):
        value = params.get(name)
        if value is None:
            continue
        moment = _parse_moment(value)
        if moment is None:
            problems.append(f"{name} must be an ISO 8601 date-time, like 2025-03-01T12:00:00Z")
        bounds[name] = moment
    if problems:
        raise ValidationError(problems)
    start = bounds.get("start") or timezone.now()
    end = bounds.get("end") or start + timedelta(days=default_days)
    if end <= start:
        raise ValidationError("end must be after start")
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        raise ValidationError(f"a range can span at most {MAX_RANGE_DAYS} days")
    return start, end


_RANGE_PARAMS = [
    OpenApiParameter("start", OpenApiTypes.DATETIME, description="Default: now."),
    OpenApiParameter(
        "end", OpenApiTypes.DATETIME, description="Default: a week after start; at most a year."
    ),
]


class ScheduleViewSet(Audited, ParseBodyFirst, viewsets.ModelViewSet):
    """Schedules, their layers (written through /layers/), their final shifts and who is on
    call. Everyone reads; admins configure."""

    serializer_class = ScheduleSerializer
    queryset = Schedule.objects.prefetch_related(
        Prefetch("layers", queryset=Layer.objects.prefetch_related("participants"))
    )
    pagination_class = cursor_by("name")

    def perform_destroy(self, instance):
        _protect_targets(instance, "schedules")
        super().perform_destroy(instance)

    @extend_schema(parameters=_RANGE_PARAMS, responses=FinalScheduleSerializer)
    @action(detail=True, methods=["get"], serializer_class=FinalScheduleSerializer)
    def final(self, request, pk=None):
        """The final schedule over a range: layers, restrictions and overrides combined."""
        schedule = self.get_object()
        start, end = _range(request.query_params)
        entry = schedules.load_schedules([schedule], start, end)[schedule.pk]
        shifts = rotations.final_shifts(entry.spec, start, end)
        data = {
            "schedule": _schedule_ref(schedule),
            "start": start,
            "end": end,
            "shifts": [_shift_data(s, entry.people) for s in shifts],
            "gaps": [{"start": s, "end": e} for s, e in rotations.uncovered(shifts, start, end)],
        }
        return Response(FinalScheduleSerializer(data).data)

    @extend_schema(responses=ScheduleOnCallSerializer)
    @action(detail=True, methods=["get"], serializer_class=ScheduleOnCallSerializer)
    def oncall(self, request, pk=None):
        """Who is on call now, until when, and who is next."""
        (entry,) = schedules.on_call_summary([self.get_object()])
        return Response(ScheduleOnCallSerializer(_on_call_data(entry)).data)

    @extend_schema(request=None, responses=ScheduleSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-ical")
    def rotate_ical(self, request, pk=None):
        """Give the schedule's iCal feed a new secret URL; the old one stops working at once."""
        schedule = self.get_object()
        with transaction.atomic():
            schedule.ical_token = Schedule._meta.get_field("ical_token").get_default()
            schedule.save(update_fields=["ical_token"])
            record_change(
                request.user,
                UPDATED,
                schedule,
                {"ical_token": [audit.HIDDEN, audit.HIDDEN]},
                summary=f"{request.user.get_username()} rotated the iCal URL of {schedule}",
            )
        return Response(self.get_serializer(schedule).data)


# --- overrides --------------------------------------------------------------------------------


class OverrideSerializer(serializers.ModelSerializer):
    user = serializers.PrimaryKeyRelatedField(queryset=_active_users())
    start = LocalDateTimeField(help_text="Without an offset: local to the schedule's zone.")
    end = LocalDateTimeField(help_text="Without an offset: local to the schedule's zone.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Override
        fields = ["id", "schedule", "user", "start", "end", "created_by", "created_at"]
        read_only_fields = ["id", "created_by", "created_at"]

    def validate(self, data):
        zone = data["schedule"].time_zone
        start, end = _in_zone(data["start"], zone), _in_zone(data["end"], zone)
        if end <= start:
            raise ValidationError({"end": "must be after start"})
        if end <= timezone.now():
            raise ValidationError({"end": "an override must end in the future"})
        if end - start > timedelta(days=MAX_RANGE_DAYS):
            raise ValidationError(f"an override can last at most {MAX_RANGE_DAYS} days")
        return {**data, "start": start, "end": end}


@extend_schema_view(
    list=extend_schema(
        parameters=[
            _SCHEDULE_FILTER,
            OpenApiParameter("user", int, description="Only this person's."),
            OpenApiParameter("upcoming", bool, description="Only those not yet over."),
        ]
    )
)
class OverrideViewSet(
    ParseBodyFirst,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Overrides: someone on call instead, for a while. Responders create and remove them.

    DELETE removes an override that has not started, and ends one under way now (the past
    stays as it was); one already over is history and cannot be removed.
    """

    serializer_class = OverrideSerializer
    queryset = Override.objects.select_related("created_by")
    write_role = Role.RESPONDER
    pagination_class = cursor_by("-start", "-id")

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            params = self.request.query_params
            queryset = _filter_ids(queryset, params, schedule="schedule_id", user="user_id")
            upcoming = params.get("upcoming")
            if upcoming in ("1", "true"):
                queryset = queryset.filter(end__gt=timezone.now())
            elif upcoming not in (None, "0", "false"):
                raise ValidationError("upcoming must be true or false")
        return queryset

    @transaction.atomic
    def perform_create(self, serializer):
        override = serializer.save(created_by=self.request.user)
        record_change(self.request.user, CREATED, override, snapshot(override))

    @transaction.atomic
    def perform_destroy(self, instance):
        now = timezone.now()
        if instance.end <= now:
            raise Conflict("This override is over; it stays in the schedule's history.")
        if instance.start < now:
            before = snapshot(instance)
            instance.end = now
            instance.save(update_fields=["end"])
            record_change(self.request.user, UPDATED, instance, diff(before, snapshot(instance)))
            return
        before, pk = snapshot(instance), instance.pk
        instance.delete()
        record_change(self.request.user, DELETED, instance, before, object_id=pk)


# --- who is on call ---------------------------------------------------------------------------


class ServiceOnCallSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    policy = serializers.CharField(allow_null=True)
    paged_first = UserRefSerializer(
        many=True, help_text="Who the policy's first step would page now."
    )


class OnCallSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    schedules = ScheduleOnCallSerializer(many=True)
    service = ServiceOnCallSerializer(required=False)


@extend_schema(
    parameters=[
        OpenApiParameter(
            "service", str, description="A service id or name: the schedules its policy pages."
        ),
        OpenApiParameter("user", str, description="A user id or username: their schedules."),
    ],
    responses=OnCallSerializer,
)
class OnCallView(APIView):
    """Who is on call now and who is next, for every schedule (or a service's, or a person's)."""

    def get(self, request):
        params = request.query_params
        check_query_text(params)
        queryset = Schedule.objects.all()
        at = timezone.now()
        data: dict = {"at": at}
        if value := params.get("service"):
            service = _find(Service, value, "name", "service")
            binding = ServicePolicy.objects.filter(service=service).select_related("policy").first()
            targets = EscalationStep.schedules.through.objects.filter(
                escalationstep__policy_id=binding.policy_id if binding else None
            )
            queryset = queryset.filter(pk__in=targets.values("schedule_id"))
            data["service"] = {
                "id": service.pk,
                "name": service.name,
                "policy": binding.policy.name if binding else None,
                "paged_first": [_user_ref(u) for u in schedules.on_call_for_service(service, at)],
            }
        if value := params.get("user"):
            user = _find(User, value, "username", "user")
            queryset = queryset.filter(pk__in=schedules.schedules_of(user).values("pk"))
        entries = schedules.on_call_summary(list(queryset.order_by("name")), at)
        data["schedules"] = [_on_call_data(e) for e in entries]
        return Response(OnCallSerializer(data).data)


def _find(model, value: str, name_field: str, what: str):
    lookup = {"pk": int(value)} if value.isdigit() else {name_field: value}
    found = model.objects.filter(**lookup).first()
    if found is None:
        raise ValidationError(f"there is no {what} {value}")
    return found


class PersonShiftSerializer(serializers.Serializer):
    schedule = ScheduleRefSerializer()
    user = UserRefSerializer()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    layer = serializers.IntegerField(allow_null=True)
    override = serializers.IntegerField(allow_null=True)


@extend_schema(
    parameters=[
        OpenApiParameter("user", str, description="A user id or username; default: you."),
        *_RANGE_PARAMS,
    ],
    responses=PersonShiftSerializer(many=True),
)
class ShiftsView(APIView):
    """A person's on-call shifts across every schedule, by start."""

    def get(self, request):
        value = request.query_params.get("user")
        user = _find(User, value, "username", "user") if value else request.user
        start, end = _range(request.query_params)
        found = schedules.shifts_for_person(user, start, end)
        data = [
            {
                "schedule": _schedule_ref(p.schedule),
                "user": _user_ref(user),
                "start": p.start,
                "end": p.end,
                "layer": p.shift.layer_id,
                "override": p.shift.override_id,
            }
            for p in found
        ]
        return Response(PersonShiftSerializer(data, many=True).data)


class ScheduleGapsSerializer(serializers.Serializer):
    schedule = ScheduleRefSerializer()
    gaps = RangeSerializer(many=True)


@extend_schema(
    parameters=[
        OpenApiParameter("pk", int, OpenApiParameter.PATH, description="The person's user id."),
        OpenApiParameter("days", int, description="How far ahead to look (default 30, max 366)."),
    ],
    responses=ScheduleGapsSerializer(many=True),
)
class DeactivationGapsView(APIView):
    """Before (or after) deactivating someone: for each schedule they are in, the times nobody
    covers once they are out. Admins only."""

    read_role = Role.ADMIN

    def get(self, request, pk: int):
        check_query_text(request.query_params)
        user = get_object_or_404(User, pk=pk)
        days = request.query_params.get("days", "30")
        if not days.isdigit() or not 1 <= int(days) <= MAX_RANGE_DAYS:
            raise ValidationError(f"days must be 1 to {MAX_RANGE_DAYS}")
        report = schedules.gaps_after_deactivation(user, int(days))
        data = [
            {
                "schedule": _schedule_ref(r.schedule),
                "gaps": [{"start": s, "end": e} for s, e in r.gaps],
            }
            for r in report
        ]
        return Response(ScheduleGapsSerializer(data, many=True).data)


# --- escalation policies ----------------------------------------------------------------------


class EscalationStepSerializer(serializers.ModelSerializer):
    users = serializers.PrimaryKeyRelatedField(many=True, queryset=_active_users(), required=False)
    schedules = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Schedule.objects.all(), required=False
    )
    teams = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Team.objects.all(), required=False
    )

    class Meta:
        model = EscalationStep
        fields = ["id", "position", "delay_minutes", "users", "schedules", "teams"]
        read_only_fields = ["id", "position"]
        extra_kwargs = {"delay_minutes": {"min_value": 0, "max_value": 24 * 60}}

    def validate(self, data):
        if not (data.get("users") or data.get("schedules") or data.get("teams")):
            raise ValidationError("a step needs someone to page: users, schedules or teams")
        return data


class EscalationPolicySerializer(serializers.ModelSerializer):
    steps = EscalationStepSerializer(
        many=True, required=False, help_text="In order; a write replaces them all."
    )

    class Meta:
        model = EscalationPolicy
        fields = ["id", "name", "description", "team", "repeat", "steps"]
        read_only_fields = ["id"]
        extra_kwargs = {
            "repeat": {
                "min_value": 0,
                "max_value": 9,
                "help_text": "How many more times the whole policy runs after the first pass.",
            }
        }

    def validate_steps(self, value):
        if len(value) > MAX_STEPS:
            raise ValidationError(f"at most {MAX_STEPS} steps")
        return value

    def create(self, validated_data):
        steps = validated_data.pop("steps", [])
        policy = EscalationPolicy.objects.create(**validated_data)
        self._set_steps(policy, steps)
        return policy

    def update(self, instance, validated_data):
        steps = validated_data.pop("steps", None)
        instance = super().update(instance, validated_data)
        if steps is not None:
            self._set_steps(instance, steps)
        return instance

    def _set_steps(self, policy: EscalationPolicy, steps: list[dict]) -> None:
        """Make the policy's steps these, in order, keeping the rows at each position (and
        auditing each step created, changed or removed)."""
        actor = self.context["request"].user
        existing = list(policy.steps.order_by("position", "id"))
        for position, data in enumerate(steps):
            targets = {name: data.pop(name, []) for name in ("users", "schedules", "teams")}
            if position < len(existing):
                step = existing[position]
                before = snapshot(step)
                step.position, step.delay_minutes = position, data["delay_minutes"]
                step.save(update_fields=["position", "delay_minutes"])
            else:
                step = EscalationStep.objects.create(policy=policy, position=position, **data)
                before = None
            for name, values in targets.items():
                getattr(step, name).set(values)
            after = snapshot(step)
            if before is None:
                record_change(actor, CREATED, step, after)
            else:
                record_change(actor, UPDATED, step, diff(before, after))
        for step in existing[len(steps) :]:
            before, pk = snapshot(step), step.pk
            step.delete()
            record_change(actor, DELETED, step, before, object_id=pk)


class EscalationPolicyViewSet(Audited, ParseBodyFirst, viewsets.ModelViewSet):
    """Escalation policies and their ordered steps. Everyone reads; admins configure."""

    serializer_class = EscalationPolicySerializer
    queryset = EscalationPolicy.objects.prefetch_related(
        Prefetch(
            "steps",
            queryset=EscalationStep.objects.order_by("position", "id").prefetch_related(
                "users", "schedules", "teams"
            ),
        )
    )
    pagination_class = cursor_by("name")

    def audit_extra(self, instance) -> dict:
        # Steps get their own entries; the policy's shows only how many there are.
        return {"steps": instance.steps.count()}


class ServicePolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = ServicePolicy
        fields = ["id", "service", "policy"]
        read_only_fields = ["id"]


@extend_schema_view(
    list=extend_schema(parameters=[OpenApiParameter("service", int, description="One service.")])
)
class ServicePolicyViewSet(Audited, ParseBodyFirst, viewsets.ModelViewSet):
    """Which escalation policy each service's incidents follow. Admins configure."""

    serializer_class = ServicePolicySerializer
    queryset = ServicePolicy.objects.all()
    pagination_class = cursor_by("id")

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            queryset = _filter_ids(queryset, self.request.query_params, service="service_id")
        return queryset


# --- me: contact methods, rules, settings, iCal -----------------------------------------------


def _person_error(exc: people.ContactMethodError) -> ValidationError:
    return ValidationError(str(exc))


class ContactMethodSerializer(serializers.ModelSerializer):
    region = serializers.CharField(
        write_only=True,
        required=False,
        max_length=2,
        help_text="For a number without +: its country, like US or DE.",
    )
    verified = serializers.BooleanField(source="is_verified", read_only=True)

    class Meta:
        model = ContactMethod
        fields = [
            "id",
            "kind",
            "address",
            "label",
            "region",
            "verified",
            "verified_at",
            "opted_out",
            "created_at",
        ]
        read_only_fields = ["id", "verified_at", "opted_out", "created_at"]
        extra_kwargs = {
            "address": {"help_text": "A phone number (stored as E.164) or an email address."}
        }
        validators = []  # uniqueness is checked by the service, with a clearer message

    def validate_kind(self, value):
        if self.instance is not None and value != self.instance.kind:
            raise ValidationError("a contact method's kind cannot change; add another one")
        return value


class CodeSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=20)


class MineOnly:
    """A viewset of the requester's own rows; others' ids answer 404."""

    def get_queryset(self):
        return super().get_queryset().filter(user=self.request.user)


class ContactMethodViewSet(MineOnly, ParseBodyFirst, viewsets.ModelViewSet):
    """Your contact methods. Add one, ask for a code (`verify/`), type it back (`confirm/`).

    Responders manage their own; an address change must be verified again.
    """

    serializer_class = ContactMethodSerializer
    queryset = ContactMethod.objects.all()
    write_role = Role.RESPONDER
    pagination_class = cursor_by("id")

    def perform_create(self, serializer):
        data = serializer.validated_data
        try:
            with transaction.atomic():
                method = people.add_contact_method(
                    self.request.user,
                    data["kind"],
                    data["address"],
                    label=data.get("label", ""),
                    region=data.get("region"),
                )
                record_change(self.request.user, CREATED, method, snapshot(method))
        except people.ContactMethodError as exc:
            raise _person_error(exc) from None
        serializer.instance = method

    def perform_update(self, serializer):
        data = serializer.validated_data
        method = serializer.instance
        before = snapshot(method)
        try:
            with transaction.atomic():
                people.update_contact_method(
                    method,
                    label=data.get("label"),
                    address=data.get("address"),
                    region=data.get("region"),
                )
                record_change(self.request.user, UPDATED, method, diff(before, snapshot(method)))
        except people.ContactMethodError as exc:
            raise _person_error(exc) from None

    @transaction.atomic
    def perform_destroy(self, instance):
        before, pk = snapshot(instance), instance.pk
        people.delete_contact_method(instance)
        record_change(self.request.user, DELETED, instance, before, object_id=pk)

    @extend_schema(request=None, responses={202: ContactMethodSerializer})
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        """Send a 6-digit code to this contact method; it is valid for 10 minutes."""
        method = self.get_object()
        if method.is_verified:
            raise Conflict(f"{method} is already verified.")
        try:
            people.start_verification(method)
        except people.VerificationFailed as exc:
            raise Throttled(wait=people.RESEND_AFTER.total_seconds(), detail=str(exc)) from None
        method.refresh_from_db()
        return Response(self.get_serializer(method).data, status=202)

    @extend_schema(request=CodeSerializer, responses=ContactMethodSerializer)
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        """Confirm the code sent by `verify/`. A verified first phone gets default rules."""
        method = self.get_object()
        serializer = CodeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            method = people.confirm_verification(method, serializer.validated_data["code"])
        except people.VerificationFailed as exc:
            raise _person_error(exc) from None
        return Response(self.get_serializer(method).data)


class MyContactMethodField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        request = self.context.get("request")
        if request is None or not request.user.is_authenticated:
            return ContactMethod.objects.none()
        return ContactMethod.objects.filter(user=request.user)


class NotificationRuleSerializer(serializers.ModelSerializer):
    contact_method = MyContactMethodField(help_text="One of your verified contact methods.")
    urgency = serializers.ChoiceField(choices=Urgency.choices)

    class Meta:
        model = NotificationRule
        fields = ["id", "urgency", "delay_minutes", "contact_method"]
        read_only_fields = ["id"]
        extra_kwargs = {
            "delay_minutes": {"min_value": 0, "max_value": people.MAX_RULE_DELAY_MINUTES}
        }
        validators = []  # the service says "you already have this rule"


class NotificationRuleViewSet(MineOnly, ParseBodyFirst, viewsets.ModelViewSet):
    """Your notification rules: how and when a page reaches you, per urgency."""

    serializer_class = NotificationRuleSerializer
    queryset = NotificationRule.objects.select_related("contact_method")
    write_role = Role.RESPONDER
    pagination_class = cursor_by("id")

    def perform_create(self, serializer):
        try:
            with transaction.atomic():
                rule = people.add_notification_rule(self.request.user, **serializer.validated_data)
                record_change(self.request.user, CREATED, rule, snapshot(rule))
        except people.ContactMethodError as exc:
            raise _person_error(exc) from None
        serializer.instance = rule

    def perform_update(self, serializer):
        rule = serializer.instance
        before = snapshot(rule)
        try:
            with transaction.atomic():
                people.update_notification_rule(rule, **serializer.validated_data)
                record_change(self.request.user, UPDATED, rule, diff(before, snapshot(rule)))
        except people.ContactMethodError as exc:
            raise _person_error(exc) from None

    @transaction.atomic
    def perform_destroy(self, instance):
        before, pk = snapshot(instance), instance.pk
        people.delete_notification_rule(instance)
        record_change(self.request.user, DELETED, instance, before, object_id=pk)


class PersonSettingsSerializer(serializers.Serializer):
    time_zone = serializers.CharField(max_length=64, help_text="An IANA zone, like Europe/Berlin.")
    quiet_start = serializers.TimeField(
        allow_null=True, help_text="Low-urgency pages wait outside quiet hours (your zone)."
    )
    quiet_end = serializers.TimeField(allow_null=True)
    ical_url = serializers.SerializerMethodField()

    def get_ical_url(self, obj) -> str:
        return ical_url("person", obj.ical_token)


class PersonSettingsView(ParseBodyFirst, GenericAPIView):
    """Your time zone and quiet hours. Anyone may change their own."""

    serializer_class = PersonSettingsSerializer
    read_role = write_role = Role.OBSERVER

    def get_object(self):
        return people.person_settings(self.request.user)

    def get(self, request):
        return Response(self.get_serializer(self.get_object()).data)

    def put(self, request):
        return self._write(request, partial=False)

    def patch(self, request):
        return self._write(request, partial=True)

    def _write(self, request, *, partial: bool) -> Response:
        prefs = self.get_object()
        serializer = self.get_serializer(prefs, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        before = snapshot(prefs)
        try:
            with transaction.atomic():
                prefs = people.update_person_settings(request.user, **serializer.validated_data)
                record_change(request.user, UPDATED, prefs, diff(before, snapshot(prefs)))
        except people.ContactMethodError as exc:
            raise _person_error(exc) from None
        return Response(self.get_serializer(prefs).data)


class IcalUrlSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="Subscribe to it in a calendar; keep it secret.")


class MyIcalView(APIView):
    """The secret URL of your own on-call calendar."""

    read_role = Role.OBSERVER

    @extend_schema(responses=IcalUrlSerializer)
    def get(self, request):
        prefs = people.person_settings(request.user)
        return Response({"url": ical_url("person", prefs.ical_token)})


class MyIcalRotateView(ParseBodyFirst, APIView):
    """Give your calendar a new secret URL; the old one stops working at once."""

    write_role = Role.OBSERVER

    @extend_schema(request=None, responses=IcalUrlSerializer)
    def post(self, request):
        with transaction.atomic():
            prefs = people.rotate_ical_token(request.user)
            record_change(
                request.user,
                UPDATED,
                prefs,
                {"ical_token": [audit.HIDDEN, audit.HIDDEN]},
                summary=f"{request.user.get_username()} rotated their iCal URL",
            )
        return Response({"url": ical_url("person", prefs.ical_token)})


# --- the audit log ----------------------------------------------------------------------------


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor", "action", "object_type", "object_id", "summary", "changes"]


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("object_type", str, description="Like oncall.schedule."),
            OpenApiParameter("object_id", str),
            OpenApiParameter("actor", str, description="A username."),
        ]
    )
)
class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """Who changed which schedule, override, policy, integration or rule, and when. Admins."""

    serializer_class = AuditEntrySerializer
    queryset = AuditEntry.objects.select_related("actor")
    read_role = Role.ADMIN
    pagination_class = cursor_by("-at", "-id")

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            params = self.request.query_params
            check_query_text(params)
            for name, lookup in (
                ("object_type", "object_type"),
                ("object_id", "object_id"),
                ("actor", "actor__username"),
            ):
                if value := params.get(name):
                    queryset = queryset.filter(**{lookup: value})
        return queryset
