"""API: escalating an incident, pages (per incident, with delivery status), "page this person",
and the dev outbox."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api_fields import PersonField
from accounts.models import Role
from core.api_errors import ParseBodyFirst
from core.pagination import cursor_by
from incidents.api import IncidentSerializer, incident_data
from incidents.models import Source
from incidents.selectors import access_incident
from oncall import escalation, paging
from oncall.models import ContactKind, OutboxKind, OutboxMessage, Page
from oncall.privacy import address_for, text_for

ADDRESS_HELP = "Where it went; masked (+14•••••••01) for anyone but its owner and admins."


def _viewer(serializer: serializers.Serializer):
    request = serializer.context.get("request")
    return request.user if request is not None else None


class PageSerializer(serializers.ModelSerializer):
    incident = serializers.IntegerField(source="incident.number", read_only=True)
    person = serializers.CharField(source="person.username", read_only=True)
    address = serializers.SerializerMethodField(help_text=ADDRESS_HELP)
    error = serializers.SerializerMethodField(
        help_text="Why delivery failed, if it did; the address in it masked as `address` is."
    )

    class Meta:
        model = Page
        fields = [
            "id",
            "incident",
            "person",
            "channel",
            "address",
            "status",
            "provider_status",
            "step",
            "cycle",
            "manual",
            "attempts",
            "send_after",
            "sent_at",
            "finished_at",
            "provider_id",
            "error",
            "body",
            "created_at",
        ]

    def get_address(self, obj: Page) -> str:
        return address_for(_viewer(self), obj.person_id, obj.address)

    def get_error(self, obj: Page) -> str:
        return text_for(_viewer(self), obj.person_id, obj.address, obj.error)


class PageViewSet(viewsets.ReadOnlyModelViewSet):
    """Every page, filterable by ?incident=<number>, ?person=<username>, ?channel=, ?status=."""

    serializer_class = PageSerializer
    pagination_class = cursor_by("-id")

    @extend_schema(
        parameters=[
            OpenApiParameter("incident", int, description="Incident number."),
            OpenApiParameter("person", str, description="Username."),
            OpenApiParameter("channel", str, enum=["sms", "voice", "email", "console"]),
            OpenApiParameter("status", str),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        queryset = Page.objects.select_related("incident", "person")
        params = self.request.query_params
        if number := params.get("incident"):
            if not number.isdigit():
                raise ValidationError("incident must be an incident number")
            queryset = queryset.filter(incident__number=int(number))
        if person := params.get("person"):
            queryset = queryset.filter(person__username=person)
        if channel := params.get("channel"):
            queryset = queryset.filter(channel=channel)
        if status := params.get("status"):
            queryset = queryset.filter(status=status)
        return queryset


class OutboxMessageSerializer(serializers.ModelSerializer):
    # Plain strings in the schema: as enums, both choice sets would clash with the ones of
    # ContactMethod.kind and alerts' Kind under drf-spectacular's enum naming.
    kind = serializers.CharField(
        read_only=True, help_text="What it is: " + ", ".join(OutboxKind.values) + "."
    )
    channel = serializers.CharField(
        read_only=True,
        help_text="How it would have gone: " + ", ".join(ContactKind.values) + ".",
    )
    incident = serializers.IntegerField(
        source="page.incident.number", allow_null=True, read_only=True
    )
    person = serializers.CharField(source="person.username", allow_null=True, read_only=True)
    address = serializers.SerializerMethodField(help_text=ADDRESS_HELP)
    body = serializers.SerializerMethodField(
        help_text="What was sent; a verification code only to its owner and admins."
    )
    status = serializers.CharField(
        source="page.status",
        allow_null=True,
        read_only=True,
        help_text="The page's delivery status; null for a message that is no page.",
    )

    class Meta:
        model = OutboxMessage
        fields = [
            "id",
            "kind",
            "incident",
            "page",
            "person",
            "channel",
            "address",
            "body",
            "status",
            "created_at",
        ]

    def get_address(self, obj: OutboxMessage) -> str:
        return address_for(_viewer(self), obj.person_id, obj.address)

    def get_body(self, obj: OutboxMessage) -> str:
        return obj.body_for(self.context["request"].user)


class OutboxViewSet(viewsets.ReadOnlyModelViewSet):
    """The dev outbox: every SMS and call the console channel "sent" without Twilio configured,
    newest first: pages (with their incident), verification codes and test pages.

    Filterable by ?kind=, ?incident=<number>, ?person=<username>, ?channel=.
    """

    serializer_class = OutboxMessageSerializer
    pagination_class = cursor_by("-id")

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, enum=OutboxKind.values),
            OpenApiParameter("incident", int, description="Incident number (pages only)."),
            OpenApiParameter("person", str, description="Username."),
            OpenApiParameter("channel", str, enum=ContactKind.values),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        queryset = OutboxMessage.objects.select_related("page__incident", "person")
        params = self.request.query_params
        if kind := params.get("kind"):
            queryset = queryset.filter(kind=kind)
        if number := params.get("incident"):
            if not number.isdigit():
                raise ValidationError("incident must be an incident number")
            queryset = queryset.filter(page__incident__number=int(number))
        if person := params.get("person"):
            queryset = queryset.filter(person__username=person)
        if channel := params.get("channel"):
            queryset = queryset.filter(channel=channel)
        return queryset


class PagePersonSerializer(serializers.Serializer):
    user = PersonField()


@extend_schema(request=PagePersonSerializer, responses=PageSerializer(many=True))
@api_view(["POST"])
def page_person(request, number: int):
    """Page a person about an incident now, outside its escalation policy (responder+)."""
    incident = access_incident(request.user, int(number), role=Role.RESPONDER)
    serializer = PagePersonSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    person = serializer.validated_data["user"]
    pages = paging.page_person(incident, person, by=request.user, source=Source.API)
    if not pages:
        raise ValidationError(f"{person.get_username()} has no verified contact method")
    return Response(PageSerializer(pages, many=True, context={"request": request}).data, status=201)


# api_view made page_person.cls, a class of its own; the stubs type it as a bare APIView,
# which has no write_role (RolePermission reads it with getattr).
page_person.cls.write_role = Role.RESPONDER  # type: ignore[attr-defined]


class EscalateSerializer(serializers.Serializer):
    level = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="The escalation level to page (1-based, as PagerDuty's escalation_level); "
        "without it, the level after the one paged last.",
    )


class EscalationOutcomeSerializer(serializers.Serializer):
    level = serializers.IntegerField(
        allow_null=True, help_text="The level paged; null when only the admins were."
    )
    paged = serializers.ListField(child=serializers.CharField(), help_text="Usernames paged.")
    note = serializers.CharField(help_text="What else to know, such as a policy that ran out.")


class EscalatedIncidentSerializer(IncidentSerializer):
    escalation = EscalationOutcomeSerializer(help_text="Whom the escalation paged, and why.")

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "escalation"]


class EscalateView(ParseBodyFirst, APIView):
    """Escalate now: page the next level of the escalation policy, or `level` (responder+).
    An acknowledged incident triggers again; the answer says whom it paged."""

    write_role = Role.RESPONDER

    @extend_schema(
        request=EscalateSerializer,
        responses=EscalatedIncidentSerializer,
        parameters=[OpenApiParameter("number", int, OpenApiParameter.PATH)],
    )
    def post(self, request, number: int):
        incident = access_incident(request.user, int(number), role=Role.RESPONDER)
        serializer = EscalateSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        incident, outcome = escalation.escalate_incident(
            incident,
            level=serializer.validated_data.get("level"),
            by=request.user,
            source=Source.API,
        )
        return Response(
            {
                **incident_data(incident),
                "escalation": {
                    "level": outcome.level,
                    "paged": list(outcome.paged),
                    "note": outcome.note,
                },
            }
        )
