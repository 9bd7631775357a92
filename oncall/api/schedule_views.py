"""API: schedules, their layers and overrides, the final schedule and who is on call in one.

Everyone reads; responders create and remove overrides; admins configure the rest.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.relations import PKOnlyObject
from rest_framework.response import Response

from accounts import audit
from accounts.audit import UPDATED, Audited, record_change
from accounts.models import Role, User
from core.api_errors import Conflict, ParseBodyFirst
from core.pagination import cursor_by
from oncall import overrides, people, rotations, schedules
from oncall.api.common import (
    MAX_PARTICIPANTS,
    MAX_RESTRICTIONS,
    RANGE_PARAMS,
    LocalDateTimeField,
    RangeSerializer,
    ScheduleRefSerializer,
    UserRefSerializer,
    active_users,
    filter_ids,
    in_zone,
    parse_range,
    protect_targets,
    schedule_ref,
    user_ref,
)
from oncall.ical import ical_url
from oncall.models import Layer, LayerParticipant, Override, Schedule

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

    child = serializers.PrimaryKeyRelatedField(queryset=active_users())

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
                data[name] = in_zone(data[name], zone)
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
            queryset = filter_ids(queryset, self.request.query_params, schedule="schedule_id")
        return queryset

    def audit_extra(self, instance) -> dict:
        return {"participants": list(instance.participants.values_list("user_id", flat=True))}


# --- schedules --------------------------------------------------------------------------------


class ScheduleSerializer(serializers.ModelSerializer):
    layers = LayerSerializer(many=True, read_only=True)
    ical_url = serializers.SerializerMethodField(
        help_text="A secret URL calendars subscribe to; rotate it to revoke. Only for admins "
        "and the schedule's people (its layers, overrides and team); null for anyone else, "
        "who subscribes to their own feed instead."
    )

    class Meta:
        model = Schedule
        fields = ["id", "name", "description", "team", "time_zone", "layers", "ical_url"]
        read_only_fields = ["id"]

    def get_ical_url(self, obj) -> str | None:
        # One query for a whole list: the ids are kept on the root (the list) serializer.
        root = self.root
        if not hasattr(root, "_feed_schedules"):
            request = self.context.get("request")
            ids = schedules.feed_schedule_ids(request.user) if request is not None else set()
            setattr(root, "_feed_schedules", ids)  # noqa: B010 - an attribute of our own
        readable = getattr(root, "_feed_schedules")  # noqa: B009
        if readable is not None and obj.pk not in readable:
            return None
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


def shift_data(shift: rotations.Shift, who: dict[int, User]) -> dict:
    return {
        "user": user_ref(who[shift.user_id]),
        "start": shift.start,
        "end": shift.end,
        "layer": shift.layer_id,
        "override": shift.override_id,
    }


def on_call_data(entry: schedules.OnCall) -> dict:
    return {
        "schedule": schedule_ref(entry.schedule),
        "at": entry.at,
        "on_call": [user_ref(u) for u in entry.people],
        "until": entry.until,
        "next": (
            {"user": user_ref(entry.next_person), "start": entry.next_start}
            if entry.next_person
            else None
        ),
    }


class ScheduleViewSet(Audited, ParseBodyFirst, viewsets.ModelViewSet):
    """Schedules, their layers (written through /layers/), their final shifts and who is on
    call. Everyone reads; admins configure."""

    serializer_class = ScheduleSerializer
    queryset = Schedule.objects.prefetch_related(
        Prefetch("layers", queryset=Layer.objects.prefetch_related("participants"))
    )
    pagination_class = cursor_by("name")

    def perform_destroy(self, instance):
        protect_targets(instance, "schedules")
        super().perform_destroy(instance)

    @extend_schema(parameters=RANGE_PARAMS, responses=FinalScheduleSerializer)
    @action(detail=True, methods=["get"], serializer_class=FinalScheduleSerializer)
    def final(self, request, pk=None):
        """The final schedule over a range: layers, restrictions and overrides combined."""
        schedule = self.get_object()
        start, end = parse_range(request.query_params)
        entry = schedules.load_schedules([schedule], start, end)[schedule.pk]
        shifts = rotations.final_shifts(entry.spec, start, end)
        data = {
            "schedule": schedule_ref(schedule),
            "start": start,
            "end": end,
            "shifts": [shift_data(s, entry.people) for s in shifts],
            "gaps": [{"start": s, "end": e} for s, e in rotations.uncovered(shifts, start, end)],
        }
        return Response(FinalScheduleSerializer(data).data)

    @extend_schema(responses=ScheduleOnCallSerializer)
    @action(detail=True, methods=["get"], serializer_class=ScheduleOnCallSerializer)
    def oncall(self, request, pk=None):
        """Who is on call now, until when, and who is next."""
        (entry,) = schedules.on_call_summary([self.get_object()])
        return Response(ScheduleOnCallSerializer(on_call_data(entry)).data)

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
    user = serializers.PrimaryKeyRelatedField(queryset=active_users())
    start = LocalDateTimeField(help_text="Without an offset: local to the schedule's zone.")
    end = LocalDateTimeField(help_text="Without an offset: local to the schedule's zone.")
    created_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = Override
        fields = ["id", "schedule", "user", "start", "end", "created_by", "created_at"]
        read_only_fields = ["id", "created_by", "created_at"]

    def validate(self, data):
        try:
            start, end = overrides.check_override(
                data["schedule"], data["user"], data["start"], data["end"]
            )
        except overrides.OverrideError as exc:
            raise _override_error(exc) from None
        return {**data, "start": start, "end": end}


def _override_error(exc: overrides.OverrideError) -> ValidationError:
    return ValidationError({exc.field: exc.message} if exc.field else exc.message)


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
            queryset = filter_ids(queryset, params, schedule="schedule_id", user="user_id")
            upcoming = params.get("upcoming")
            if upcoming in ("1", "true"):
                queryset = queryset.filter(end__gt=timezone.now())
            elif upcoming not in (None, "0", "false"):
                raise ValidationError("upcoming must be true or false")
        return queryset

    def perform_create(self, serializer):
        try:
            serializer.instance = overrides.create_override(
                **serializer.validated_data, by=self.request.user
            )
        except overrides.OverrideError as exc:
            raise _override_error(exc) from None

    def perform_destroy(self, instance):
        try:
            overrides.remove_override(instance, by=self.request.user)
        except overrides.OverrideError as exc:
            raise Conflict(exc.message) from None
