"""API: rooms (list, open, read), their history and messages, attachments, an incident's room.

Views find the room, call a warroom service, and answer with the shapes of
warroom.selectors and warroom.services.message_json, the same as the websocket's.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.permissions import RolePermission
from core.api_errors import ParseBodyFirst, check_query_text
from core.pagination import cursor_by
from incidents.selectors import access_incident
from warroom import selectors, services
from warroom.attachments import AttachmentRefused
from warroom.commands.addressing import addressed_command
from warroom.models import Attachment, Room
from warroom.services import body_problem
from warroom.surfaces.chat import say

MAX_FILES = 10  # attachments on one message


# --- shapes, for input and for the OpenAPI document --------------------------------------------


class IncidentRefSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    status = serializers.CharField()
    severity = serializers.IntegerField()
    title = serializers.CharField()
    assignee = serializers.CharField(allow_null=True)


class ParticipantSerializer(serializers.Serializer):
    user = serializers.CharField()
    reason = serializers.CharField()
    at = serializers.DateTimeField()


class RoomSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=200)
    incident = IncidentRefSerializer(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    created_by = serializers.CharField(read_only=True, allow_null=True)
    participants = ParticipantSerializer(many=True, read_only=True)
    websocket = serializers.CharField(read_only=True, help_text="Path of the room's websocket.")
    messages = serializers.CharField(read_only=True, help_text="Path of the room's history.")


class AttachmentRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    url = serializers.CharField()


class MessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    room = serializers.IntegerField()
    author = serializers.CharField(help_text='A username, or "muster" for the bot.')
    kind = serializers.CharField(help_text="chat, command, reply or bot.")
    body = serializers.CharField(help_text="Markdown, as written.")
    html = serializers.CharField(help_text="The body rendered and sanitized.")
    created_at = serializers.DateTimeField()
    reply_to = serializers.IntegerField(allow_null=True)
    attachments = AttachmentRefSerializer(many=True)
    data = serializers.DictField()


class MessagePageSerializer(serializers.Serializer):
    results = MessageSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="Newer messages, if any.")
    previous = serializers.CharField(allow_null=True, help_text="Older messages, if any.")


class SaySerializer(serializers.Serializer):
    body = serializers.CharField(help_text="Markdown; a command when it starts with / or @muster.")
    files = serializers.ListField(
        child=serializers.FileField(), required=False, help_text="Attachments (multipart)."
    )


class PostedSerializer(serializers.Serializer):
    messages = MessageSerializer(many=True, help_text="What was said, and the bot's reply.")


class AttachmentSerializer(AttachmentRefSerializer):
    message = serializers.IntegerField()
    room = serializers.IntegerField()


# --- views ---------------------------------------------------------------------------------------


def _room(pk: int) -> Room:
    try:
        return selectors.get_room(pk)
    except selectors.RoomNotFound as exc:
        raise NotFound(str(exc)) from None


def _id_param(params, name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ValidationError({name: "must be a message id (a whole number)"})
    return int(value)


class RoomViewSet(ParseBodyFirst, mixins.ListModelMixin, viewsets.GenericViewSet):
    """War rooms, newest first: each incident's, and rooms opened by hand.

    Everyone reads; responders open ad hoc rooms. Filter by `?incident=<number>`.
    """

    permission_classes = [RolePermission]
    read_role = Role.OBSERVER
    write_role = Role.RESPONDER
    serializer_class = RoomSerializer
    pagination_class = cursor_by("-id")
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        queryset = selectors.rooms()
        params = self.request.query_params
        check_query_text(params)
        if number := params.get("incident"):
            if not (number.isascii() and number.isdigit()) or len(number) > 18:
                raise ValidationError({"incident": "must be an incident number"})
            queryset = queryset.filter(incident__number=int(number))
        return queryset

    @extend_schema(
        parameters=[OpenApiParameter("incident", int, description="Incident number.")],
        responses=RoomSerializer(many=True),
    )
    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([selectors.room_json(room) for room in page])

    @extend_schema(responses=RoomSerializer)
    def retrieve(self, request, pk: str) -> Response:
        return Response(selectors.room_json(_room(int(pk))))

    @extend_schema(request=RoomSerializer, responses={201: RoomSerializer})
    def create(self, request) -> Response:
        serializer = RoomSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        room = services.open_room(serializer.validated_data["name"], by=request.user)
        return Response(selectors.room_json(_room(room.pk)), status=201)


class RoomMessagesView(ParseBodyFirst, APIView):
    """A room's history, in id order, and saying something in it.

    GET pages with `?after=<id>` (the messages after it, oldest first), `?before=<id>` (the
    ones just before it) or neither (the latest), `limit` at most 500. POST says `body` as
    you, as in the room: conversation is posted; a command is run as you and answered by the
    bot. Everyone may talk; attachments (multipart `files`) need the responder role.
    """

    permission_classes = [RolePermission]
    read_role = Role.OBSERVER
    write_role = Role.OBSERVER  # conversation; commands check their own roles when they run

    @extend_schema(
        parameters=[
            OpenApiParameter("after", int, description="Messages after this id, oldest first."),
            OpenApiParameter("before", int, description="Messages before this id."),
            OpenApiParameter("limit", int, description="At most this many (1-500, 50)."),
        ],
        responses=MessagePageSerializer,
    )
    def get(self, request, pk: int) -> Response:
        params = request.query_params
        check_query_text(params)
        after, before = _id_param(params, "after"), _id_param(params, "before")
        limit = _id_param(params, "limit")
        if limit is None:
            limit = 50
        if not 1 <= limit <= selectors.HISTORY_MAX:
            raise ValidationError({"limit": f"must be between 1 and {selectors.HISTORY_MAX}"})
        room = _room(pk)
        rows, more = selectors.messages_between(
            room.pk, after=after, before=before, limit=limit, newest=after is None
        )
        newer = older = False
        if rows:
            newer = (
                more if after is not None else selectors.has_messages(room.pk, after=rows[-1].pk)
            )
            older = more if after is None else selectors.has_messages(room.pk, before=rows[0].pk)
        url = request.build_absolute_uri(request.path)
        return Response(
            {
                "results": [services.message_json(m) for m in rows],
                "next": f"{url}?after={rows[-1].pk}&limit={limit}" if newer else None,
                "previous": f"{url}?before={rows[0].pk}&limit={limit}" if older else None,
            }
        )

    @extend_schema(
        request={"application/json": SaySerializer, "multipart/form-data": SaySerializer},
        responses={201: PostedSerializer},
    )
    def post(self, request, pk: int) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationError('send an object with a "body"')
        body = request.data.get("body")
        files = request.FILES.getlist("files") if hasattr(request.data, "getlist") else []
        if files:
            return self._post_files(request, pk, body, files)
        problem = body_problem(body)
        if problem:
            raise ValidationError({"body": problem})
        room = _room(pk)
        with transaction.atomic():  # the command, its effect, the reply and the record
            said = say(room, body, user=request.user)
        return Response(
            {"messages": [services.message_json(m, attachments=[]) for m in said]}, status=201
        )

    def _post_files(self, request, pk: int, body: Any, files: list) -> Response:
        if not request.user.has_role(Role.RESPONDER):
            raise PermissionDenied(
                f"Attachments need the responder role; you are {request.user.role}."
            )
        if len(files) > MAX_FILES:
            raise ValidationError({"files": f"at most {MAX_FILES} files in one message"})
        problem = body_problem(body) if body else None
        if problem:
            raise ValidationError({"body": problem})
        if body and addressed_command(body) is not None:
            raise ValidationError({"body": "send a command without attachments"})
        room = _room(pk)
        try:
            with transaction.atomic():  # a refused file leaves no message behind
                message = services.post(room, body or "", author=request.user, files=files)
        except AttachmentRefused as exc:
            raise ValidationError({"files": str(exc)}) from None
        return Response({"messages": [services.message_json(message)]}, status=201)


class AttachmentView(APIView):
    """An attachment's file, downloaded (never shown inline): everyone may read.

    A client that does not accept the file's type (asking for HTML or JSON only) is answered
    with a description of it instead.
    """

    permission_classes = [RolePermission]
    read_role = Role.OBSERVER

    def perform_content_negotiation(self, request, force=False):
        # The file is served whatever the Accept header says; a description is rendered
        # only for clients that accept none of it.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
            (200, "application/json"): AttachmentSerializer,
        }
    )
    def get(self, request, pk: int):
        attachment = Attachment.objects.select_related("message").filter(pk=pk).first()
        if attachment is None:
            raise NotFound(f"There is no attachment {pk}.")
        if not request.accepts(attachment.content_type):
            return Response(
                {
                    "id": attachment.pk,
                    "name": attachment.name,
                    "content_type": attachment.content_type,
                    "size": attachment.size,
                    "url": f"/api/v1/attachments/{attachment.pk}/",
                    "message": attachment.message_id,
                    "room": attachment.message.room_id,
                }
            )
        try:
            handle = attachment.file.open("rb")
        except FileNotFoundError:
            raise NotFound(f"The file of attachment {pk} is missing from storage.") from None
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=attachment.name,
            content_type=attachment.content_type,
        )
        # Never rendered by a browser as anything but the checked type, nor run as a page.
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["Cache-Control"] = "private, max-age=3600"
        return response


class IncidentRoomView(APIView):
    """The incident's war room, opened now if it has none yet: everyone may read."""

    permission_classes = [RolePermission]
    read_role = Role.OBSERVER

    @extend_schema(responses=RoomSerializer)
    def get(self, request, number: int) -> Response:
        incident = access_incident(request.user, number)
        room = services.incident_room(incident)
        return Response(selectors.room_json(_room(room.pk)))
