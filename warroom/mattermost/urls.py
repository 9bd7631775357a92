"""Mattermost's routes, included under /mattermost/ by muster/urls.py."""

from __future__ import annotations

from django.urls import path

from warroom.mattermost import views

urlpatterns = [
    path("commands/", views.command, name="mattermost-commands"),
    path("events/", views.events, name="mattermost-events"),
    path("actions/", views.action, name="mattermost-actions"),
]
