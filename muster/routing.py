"""Websocket routes: a war room at /ws/rooms/<room_id>/ (protocol in docs/api/war-rooms.md), and the
incidents feed at /ws/incidents/ that the web UI's list follows."""

from django.urls import re_path

from warroom.consumers import RoomConsumer
from web.consumers import IncidentFeedConsumer

websocket_urlpatterns: list = [
    # Any id is routed, so that a bad one is answered with close code 4404, not a failed
    # handshake.
    re_path(r"^ws/rooms/(?P<room_id>[^/]+)/$", RoomConsumer.as_asgi()),
    re_path(r"^ws/incidents/$", IncidentFeedConsumer.as_asgi()),
]
