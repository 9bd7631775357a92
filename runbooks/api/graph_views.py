"""API: graph link templates, and the graph links an incident gets. Everyone reads; admins
write."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import Audited
from core.api_errors import ParseBodyFirst
from core.pagination import cursor_by
from incidents.models import Service
from incidents.selectors import access_incident
from runbooks.graphs import GraphTemplateError, check_url_template, graph_links
from runbooks.models import GraphTemplate


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


class GraphLinkSerializer(serializers.Serializer):
    name = serializers.CharField()
    url = serializers.URLField()
    image_url = serializers.URLField(allow_null=True)


class IncidentGraphsSerializer(serializers.Serializer):
    incident = serializers.IntegerField()
    graphs = GraphLinkSerializer(many=True)


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
