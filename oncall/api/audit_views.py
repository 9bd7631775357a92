"""API: the audit log, for admins."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from accounts.models import AuditEntry, Role, User
from core.api_errors import check_query_text
from core.pagination import cursor_by

# --- the audit log ----------------------------------------------------------------------------


class AuditEntrySerializer(serializers.ModelSerializer):
    actor: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

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
