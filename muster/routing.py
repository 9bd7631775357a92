"""Websocket routes: a war room at /ws/rooms/<room_id>/ (protocol in the README)."""

from django.urls import re_path

from warroom.consumers import RoomConsumer

websocket_urlpatterns: list = [
    # Any id is routed, so that a bad one is answered with close code 4404, not a failed
    # handshake.
    re_path(r"^ws/rooms/(?P<room_id>[^/]+)/$", RoomConsumer.as_asgi()),
]
