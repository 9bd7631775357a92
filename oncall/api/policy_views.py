"""API: teams, escalation policies with their ordered steps, and the policy of each service.

Everyone reads; admins configure.
"""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError

from accounts.audit import Audited
from accounts.models import User
from core.api_errors import ParseBodyFirst
from core.pagination import cursor_by
from oncall.api.common import active_users, filter_ids, protect_targets
from oncall.models import (
    EscalationPolicy,
    EscalationStep,
    Membership,
    Schedule,
    ServicePolicy,
    Team,
)
from oncall.policies import MAX_STEP_DELAY, MAX_STEPS, replace_steps

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
        protect_targets(instance, "teams")
        super().perform_destroy(instance)


# --- escalation policies ----------------------------------------------------------------------


class EscalationStepSerializer(serializers.ModelSerializer):
    users = serializers.PrimaryKeyRelatedField(many=True, queryset=active_users(), required=False)
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
        extra_kwargs = {"delay_minutes": {"min_value": 0, "max_value": MAX_STEP_DELAY}}

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
        replace_steps(policy, steps, by=self.context["request"].user)
        return policy

    def update(self, instance, validated_data):
        steps = validated_data.pop("steps", None)
        instance = super().update(instance, validated_data)
        if steps is not None:
            replace_steps(instance, steps, by=self.context["request"].user)
        return instance


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
        return {"steps": EscalationStep.objects.filter(policy=instance).count()}  # not cached


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
            queryset = filter_ids(queryset, self.request.query_params, service="service_id")
        return queryset
