"""API routes of warroom, included under /api/v1/ by muster/urls.py."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from warroom import api

router = SimpleRouter()
router.register("rooms", api.RoomViewSet, basename="room")

urlpatterns: list = [
    path("rooms/<int:pk>/messages/", api.RoomMessagesView.as_view(), name="room-messages"),
    path("attachments/<int:pk>/", api.AttachmentView.as_view(), name="attachment"),
    path("incidents/<int:number>/room/", api.IncidentRoomView.as_view(), name="incident-room"),
    *router.urls,
]
