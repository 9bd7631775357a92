"""Setup: the chat platforms' test message (the form is on the start page) and its post, whose
state says how the delivery went."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import path

from warroom.chat.outbox import CannotSendTest, send_test
from warroom.chat.platforms import PLATFORMS
from warroom.models import SETTLED_POST_STATES, ChatPost
from web.access import role_required
from web.views.setup.common import READ, WRITE, render_page
from web.views.setup.forms import ChatTestForm
from web.views.setup.index import index_context

REFRESH_SECONDS = 2  # the post's page reloads itself this often until the post is settled


@role_required(read=READ, write=WRITE)
def chat_test(request, platform: str):
    """Send a test message to a channel (POST only) and show its post."""
    if platform not in PLATFORMS:
        raise Http404("No such chat platform.")
    if request.method != "POST":
        return redirect(f"/setup/#chat-{platform}")
    form = ChatTestForm(request.POST, platform=platform)
    if form.is_valid():
        try:
            post = send_test(platform, form.cleaned_data["channel_id"], by=request.user)
        except CannotSendTest as exc:
            form.add_error(None, f"No test message sent: {exc}.")
        else:
            messages.success(request, f"Test message queued for {post.target}.")
            return redirect("web-setup-chat-post", post_id=post.pk)
    context = index_context({platform: form})
    return render_page(request, "web/setup/index.html", context, status=400)


@role_required(read=READ, write=WRITE)
def chat_post(request, post_id: int):
    """A test message's post: queued, sending, then sent or failed with the provider's error."""
    post = get_object_or_404(ChatPost, pk=post_id, kind="test")
    settled = post.state in SETTLED_POST_STATES
    context = {
        "post": post,
        "label": PLATFORMS[post.platform].label,
        "settled": settled,
        "refresh": None if settled else REFRESH_SECONDS,
    }
    return render_page(request, "web/setup/chat_post.html", context)


urlpatterns = [
    path("setup/chat/<str:platform>/test/", chat_test, name="web-setup-chat-test"),
    path("setup/chat/posts/<int:post_id>/", chat_post, name="web-setup-chat-post"),
]
