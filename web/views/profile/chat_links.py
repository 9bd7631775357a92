"""Web UI: link the chat account (Slack, Mattermost) that asked with `/muster link` to me, or
unlink one (warroom.links)."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from accounts.models import Role, User
from warroom import links
from web.access import role_required

TEMPLATE = "web/profile/chat_link.html"


@require_http_methods(["GET", "POST"])
@role_required(read=Role.OBSERVER, write=Role.OBSERVER)
def chat_link(request: HttpRequest, token: str) -> HttpResponse:
    """Show whom the link would make me in the chat (GET); link them once I confirm (POST)."""
    asked = links.read_link(token)
    if asked is None:
        response = render(request, TEMPLATE, {"problem": links.EXPIRED}, status=400)
    elif request.method == "POST":
        problem = links.link(asked, cast(User, request.user))  # role_required: signed in
        if problem is None:
            messages.success(
                request, f"The {asked.platform_label} user {asked.user_id} now acts as you."
            )
            return redirect("web-profile")
        response = render(request, TEMPLATE, {"problem": problem}, status=400)
    else:
        response = render(request, TEMPLATE, {"asked": asked})
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["POST"])
@role_required(read=Role.OBSERVER, write=Role.OBSERVER)
def chat_unlink(request: HttpRequest, pk: int) -> HttpResponse:
    """Unlink one of my linked chat accounts."""
    if not links.unlink(pk, cast(User, request.user)):
        raise Http404("You have no such linked chat account.")
    messages.success(request, "The chat account is unlinked.")
    return redirect("web-profile")


urlpatterns = [
    path("profile/chat/link/<str:token>/", chat_link, name="web-profile-chat-link"),
    path("profile/chat/<int:pk>/unlink/", chat_unlink, name="web-profile-chat-unlink"),
    # The first paths, Slack's only: kept for links and pages people have open.
    path("profile/slack/link/<str:token>/", chat_link, name="web-profile-slack-link"),
    path("profile/slack/<int:pk>/unlink/", chat_unlink, name="web-profile-slack-unlink"),
]
