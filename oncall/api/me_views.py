"""API: your own contact methods (and their verification), notification rules, settings and
iCal URL. Responders manage their contact methods and rules; anyone their settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import audit
from accounts.audit import CREATED, DELETED, UPDATED, diff, record_change, snapshot
from accounts.models import Role
from core.api_errors import Conflict, ParseBodyFirst
from core.pagination import cursor_by
from incidents.models import Urgency
from oncall import people
from oncall.ical import ical_url
from oncall.models import ContactMethod, NotificationRule

if TYPE_CHECKING:
    from rest_framework.validators import Validator  # a type alias in the stubs only

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
        # Uniqueness is checked by the service, with a clearer message.
        validators: list[Validator[Any]] = []

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
        validators: list[Validator[Any]] = []  # the service says "you already have this rule"


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
