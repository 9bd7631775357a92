"""Websocket routes. The war-room consumers join here in their issue."""

websocket_urlpatterns: list = []
