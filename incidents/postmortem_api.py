"""API: an incident's postmortem, its action items, its curated timeline and its exports.

Everyone (observer) reads; responders edit. Views access the incident, call a service in
incidents.postmortems, and answer. Action items are addressed by their own id
(`/api/v1/action-items/<id>/`), so every incident path carries just its number.
"""

from __future__ import annotations

from csp.constants import HEADER as CSP_HEADER
from csp.constants import NONE, UNSAFE_INLINE
from csp.utils import build_policy
from django.http import HttpResponse, JsonResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api_fields import PersonField
from accounts.models import Role
from accounts.permissions import RolePermission
from core.api_errors import ParseBodyFirst
from incidents import action_items, curation, postmortems
from incidents import postmortem_export as export
from incidents.models import ActionItem, Incident, Postmortem, TimelineEntry
from incidents.postmortem_report import Report, postmortem_report
from incidents.postmortems import FIELDS, TEXT_MAX, urls_of
from incidents.selectors import access_incident

_NUMBER = OpenApiParameter("number", int, OpenApiParameter.PATH, description="Incident number")


# --- shapes ----------------------------------------------------------------------------------


class PostmortemSerializer(serializers.Serializer):
    incident = serializers.IntegerField(read_only=True)
    started = serializers.BooleanField(read_only=True)
    summary = serializers.CharField(max_length=TEXT_MAX, allow_blank=True, required=False)
    impact = serializers.CharField(max_length=TEXT_MAX, allow_blank=True, required=False)
    root_cause = serializers.CharField(max_length=TEXT_MAX, allow_blank=True, required=False)
    contributing_factors = serializers.CharField(
        max_length=TEXT_MAX, allow_blank=True, required=False
    )
    created_at = serializers.DateTimeField(read_only=True, allow_null=True)
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)
    updated_by = serializers.CharField(read_only=True, allow_null=True)
    links = serializers.DictField(child=serializers.CharField(), read_only=True)

    # Text fields keep their spaces and line breaks as written.
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in FIELDS:
            self.fields[name].trim_whitespace = False


class ActionItemSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    incident = serializers.IntegerField(read_only=True, source="postmortem.incident.number")
    description = serializers.CharField(max_length=action_items.DESCRIPTION_MAX)
    owner = PersonField(allow_null=True, required=False)
    due = serializers.DateField(allow_null=True, required=False)
    done = serializers.BooleanField(required=False)
    order = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False)


class CurationSerializer(serializers.Serializer):
    entry = serializers.IntegerField(help_text="A timeline entry of this incident.")
    pinned = serializers.BooleanField(required=False)
    hidden = serializers.BooleanField(required=False)
    annotation = serializers.CharField(
        max_length=curation.ANNOTATION_MAX, allow_blank=True, required=False
    )


class CuratedEntrySerializer(serializers.Serializer):
    entry = serializers.IntegerField()
    pinned = serializers.BooleanField()
    hidden = serializers.BooleanField()
    annotation = serializers.CharField(allow_blank=True)


def _valid(serializer_class, request, **kwargs) -> dict:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _postmortem_json(incident: Incident, postmortem: Postmortem | None) -> dict:
    return {
        "incident": incident.number,
        "started": postmortem is not None,
        **{name: getattr(postmortem, name) if postmortem else "" for name in FIELDS},
        "created_at": postmortem.created_at if postmortem else None,
        "updated_at": postmortem.updated_at if postmortem else None,
        "updated_by": postmortem.updated_by.get_username()
        if postmortem and postmortem.updated_by
        else None,
        "links": urls_of(incident.number),
    }


# --- views -----------------------------------------------------------------------------------


class _PostmortemView(ParseBodyFirst, APIView):
    permission_classes = [RolePermission]
    read_role = Role.OBSERVER
    write_role = Role.RESPONDER

    def _incident(self, number: int) -> Incident:
        needed = Role.OBSERVER if self.request.method in ("GET", "HEAD") else Role.RESPONDER
        user = self.request.user
        assert user.is_authenticated  # RolePermission let only a signed-in person in
        return access_incident(user, number, role=needed)


_WRITE_SCHEMA = extend_schema(
    parameters=[_NUMBER], request=PostmortemSerializer, responses=PostmortemSerializer
)


class PostmortemView(_PostmortemView):
    """An incident's postmortem: read it (an unstarted one reads empty); PUT or PATCH its text
    fields, starting it if needed."""

    @extend_schema(parameters=[_NUMBER], responses=PostmortemSerializer)
    def get(self, request, number: int) -> Response:
        incident = self._incident(number)
        postmortem = (
            Postmortem.objects.select_related("updated_by").filter(incident=incident).first()
        )
        return Response(PostmortemSerializer(_postmortem_json(incident, postmortem)).data)

    @_WRITE_SCHEMA
    def put(self, request, number: int) -> Response:
        return self._write(request, number, partial=False)

    @_WRITE_SCHEMA
    def patch(self, request, number: int) -> Response:
        return self._write(request, number, partial=True)

    def _write(self, request, number: int, *, partial: bool) -> Response:
        incident = self._incident(number)
        data = _valid(PostmortemSerializer, request, partial=partial)
        if not partial:  # PUT: a field left out is emptied
            data = {name: data.get(name, "") for name in FIELDS}
        postmortem = postmortems.get_or_start_postmortem(incident, request.user)
        postmortem = postmortems.update_postmortem(postmortem, request.user, **data)
        return Response(PostmortemSerializer(_postmortem_json(incident, postmortem)).data)


class ActionItemListView(_PostmortemView):
    """The postmortem's action items, in order; responders add them (starting the postmortem)."""

    @extend_schema(parameters=[_NUMBER], responses=ActionItemSerializer(many=True))
    def get(self, request, number: int) -> Response:
        incident = self._incident(number)
        items = ActionItem.objects.filter(postmortem__incident=incident).select_related(
            "owner", "postmortem__incident"
        )
        return Response(ActionItemSerializer(items, many=True).data)

    @extend_schema(
        parameters=[_NUMBER], request=ActionItemSerializer, responses={201: ActionItemSerializer}
    )
    def post(self, request, number: int) -> Response:
        incident = self._incident(number)
        data = _valid(ActionItemSerializer, request)
        postmortem = postmortems.get_or_start_postmortem(incident, request.user)
        item = action_items.add_action_item(
            postmortem,
            description=data["description"],
            owner=data.get("owner"),
            due=data.get("due"),
            by=request.user,
        )
        if data.get("done") or "order" in data:
            item = action_items.update_action_item(
                item,
                by=request.user,
                done=data.get("done", False),
                order=data.get("order", item.order),
            )
        return Response(ActionItemSerializer(item).data, status=201)


class ActionItemView(_PostmortemView):
    """One action item by its id: read, change (PUT all, PATCH some), delete."""

    def _item(self, pk: int) -> ActionItem:
        item = (
            ActionItem.objects.select_related("owner", "postmortem__incident__service")
            .filter(pk=pk)
            .first()
        )
        if item is None:
            raise NotFound(f"There is no action item {pk}.")
        self._incident(item.postmortem.incident.number)  # the role check, with its message
        return item

    @extend_schema(responses=ActionItemSerializer)
    def get(self, request, pk: int) -> Response:
        return Response(ActionItemSerializer(self._item(pk)).data)

    @extend_schema(request=ActionItemSerializer, responses=ActionItemSerializer)
    def put(self, request, pk: int) -> Response:
        item = self._item(pk)
        data = _valid(ActionItemSerializer, request)
        item = action_items.update_action_item(
            item,
            by=request.user,
            description=data["description"],
            owner=data.get("owner"),
            due=data.get("due"),
            done=data.get("done", False),
            order=data.get("order", item.order),
        )
        return Response(ActionItemSerializer(item).data)

    @extend_schema(request=ActionItemSerializer, responses=ActionItemSerializer)
    def patch(self, request, pk: int) -> Response:
        item = self._item(pk)
        data = _valid(ActionItemSerializer, request, partial=True)
        item = action_items.update_action_item(item, by=request.user, **data)
        return Response(ActionItemSerializer(item).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int) -> Response:
        action_items.delete_action_item(self._item(pk), by=request.user)
        return Response(status=204)


class CurationView(_PostmortemView):
    """Pin, hide or annotate one entry of the incident's timeline for the postmortem (fields
    left out stay as they are). Hiding never deletes: the raw timeline keeps every entry."""

    @extend_schema(
        parameters=[_NUMBER], request=CurationSerializer, responses=CuratedEntrySerializer
    )
    def post(self, request, number: int) -> Response:
        incident = self._incident(number)
        data = _valid(CurationSerializer, request)
        entry = TimelineEntry.objects.filter(pk=data["entry"], incident=incident).first()
        if entry is None:
            raise ValidationError(
                {"entry": f"Entry {data['entry']} is not on incident #{number}'s timeline."}
            )
        postmortem = postmortems.get_or_start_postmortem(incident, request.user)
        curated = curation.curate_entry(
            postmortem,
            entry,
            by=request.user,
            pinned=data.get("pinned"),
            hidden=data.get("hidden"),
            annotation=data.get("annotation"),
        )
        return Response(
            {
                "entry": entry.pk,
                "pinned": curated.pinned,
                "hidden": curated.hidden,
                "annotation": curated.annotation,
            }
        )


_BY_ACCEPT = (("text/markdown", "markdown"), ("text/html", "html"))


class ExportView(_PostmortemView):
    """The postmortem as `?format=markdown`, `json` or `html` (without it: by the Accept header,
    JSON unless Markdown or HTML is asked for)."""

    renderer_classes = [JSONRenderer]  # errors and OPTIONS; the exports answer for themselves

    def perform_content_negotiation(self, request, force=False):
        # ?format= names the export here, not one of DRF's renderers.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[
            _NUMBER,
            OpenApiParameter("format", str, enum=list(export.FORMATS), description="The export"),
        ],
        responses={
            (200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR),
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT),
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR),
        },
    )
    def get(self, request, number: int):
        fmt = request.query_params.get("format")
        if fmt is None:
            accept = request.headers.get("Accept", "")
            fmt = next((name for kind, name in _BY_ACCEPT if kind in accept), "json")
        if fmt not in export.FORMATS:
            raise ValidationError(
                {"format": f"format must be one of {', '.join(export.FORMATS)}, not {fmt!r}."}
            )
        report = postmortem_report(self._incident(number))
        return render_export(report, fmt, attachment=False)


# The printable page's policy: the site's, with its one inline <style> and no script.
PRINT_POLICY = {"script-src": [NONE], "style-src": [UNSAFE_INLINE]}


def render_export(report: Report, fmt: str, *, attachment: bool) -> HttpResponse:
    """Return `report` exported as `fmt`, downloaded as a file when `attachment`."""
    if fmt == "json":
        response: HttpResponse = JsonResponse(
            export.to_json(report), json_dumps_params={"ensure_ascii": False, "indent": 2}
        )
    elif fmt == "markdown":
        response = HttpResponse(export.to_markdown(report), content_type=export.CONTENT_TYPES[fmt])
    else:
        response = HttpResponse(export.to_html(report), content_type=export.CONTENT_TYPES[fmt])
        # Standalone, so its style is inline; it runs no script at all.
        response[CSP_HEADER] = build_policy(replace=PRINT_POLICY)
    if attachment:
        response["Content-Disposition"] = f'attachment; filename="{export.filename(report, fmt)}"'
    return response


# Included under /api/v1/ by muster/urls.py.
urlpatterns = [
    path("incidents/<int:number>/postmortem/", PostmortemView.as_view(), name="postmortem"),
    path(
        "incidents/<int:number>/postmortem/action-items/",
        ActionItemListView.as_view(),
        name="postmortem-action-items",
    ),
    path(
        "incidents/<int:number>/postmortem/timeline/",
        CurationView.as_view(),
        name="postmortem-timeline",
    ),
    path(
        "incidents/<int:number>/postmortem/export/",
        ExportView.as_view(),
        name="postmortem-export",
    ),
    path("action-items/<int:pk>/", ActionItemView.as_view(), name="action-item"),
]
