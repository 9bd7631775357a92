"""Slack's request URLs, under /slack/ (muster/urls.py)."""

from __future__ import annotations

from django.urls import path

from warroom.slack import views

urlpatterns = [
    path("commands/", views.slash_command, name="slack-commands"),
    path("events/", views.events, name="slack-events"),
    path("interactivity/", views.interactivity, name="slack-interactivity"),
]
