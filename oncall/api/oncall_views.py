"""API: who is on call across schedules, a person's shifts, what a deactivation leaves open."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role, User
from core.api_errors import check_query_text
from incidents.models import Service
from oncall import schedules
from oncall.api.common import (
    MAX_RANGE_DAYS,
    RANGE_PARAMS,
    RangeSerializer,
    ScheduleRefSerializer,
    UserRefSerializer,
    find_by_id_or_name,
    parse_range,
    schedule_ref,
    user_ref,
)
from oncall.api.schedule_views import ScheduleOnCallSerializer, on_call_data
from oncall.models import EscalationStep, Schedule, ServicePolicy

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
            service = find_by_id_or_name(Service, value, "name", "service")
            binding = ServicePolicy.objects.filter(service=service).select_related("policy").first()
            targets = EscalationStep.schedules.through.objects.filter(
                escalationstep__policy_id=binding.policy_id if binding else None
            )
            queryset = queryset.filter(pk__in=targets.values("schedule_id"))
            data["service"] = {
                "id": service.pk,
                "name": service.name,
                "policy": binding.policy.name if binding else None,
                "paged_first": [user_ref(u) for u in schedules.on_call_for_service(service, at)],
            }
        if value := params.get("user"):
            user = find_by_id_or_name(User, value, "username", "user")
            queryset = queryset.filter(pk__in=schedules.schedules_of(user).values("pk"))
        entries = schedules.on_call_summary(list(queryset.order_by("name")), at)
        data["schedules"] = [on_call_data(e) for e in entries]
        return Response(OnCallSerializer(data).data)


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
        *RANGE_PARAMS,
    ],
    responses=PersonShiftSerializer(many=True),
)
class ShiftsView(APIView):
    """A person's on-call shifts across every schedule, by start."""

    def get(self, request):
        value = request.query_params.get("user")
        user = find_by_id_or_name(User, value, "username", "user") if value else request.user
        start, end = parse_range(request.query_params)
        found = schedules.shifts_for_person(user, start, end)
        data = [
            {
                "schedule": schedule_ref(p.schedule),
                "user": user_ref(user),
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
                "schedule": schedule_ref(r.schedule),
                "gaps": [{"start": s, "end": e} for s, e in r.gaps],
            }
            for r in report
        ]
        return Response(ScheduleGapsSerializer(data, many=True).data)
