"""The room's plain web page: where the link in a page leads.

Server-rendered, working without JavaScript: the history and a box to type in (conversation or
commands, as in any room). With JavaScript, web/static/web/room.js makes it live over the
room's websocket. It wears the web UI's frame (web/base.html); the incident's full page is
/incidents/<number>/.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from incidents.selectors import IncidentNotFound, NotAllowed, access_incident
from warroom import services
from warroom.models import Message
from warroom.surfaces.chat import say_typed

HISTORY = 200  # messages shown; the API pages through the rest


@login_required
def incident_room_page(request: HttpRequest, number: int) -> HttpResponse:
    """Show the incident's room, and say what was typed in its box (POST)."""
    try:
        incident = access_incident(request.user, number)
    except (IncidentNotFound, NotAllowed) as exc:
        raise Http404(str(exc)) from None
    room = services.incident_room(incident)
    problem = None
    if request.method == "POST":
        problem = say_typed(room, request.POST.get("body", ""), user=request.user)
        if problem is None:
            return redirect(request.path)  # post/redirect/get: a reload never says it twice
    said = list(
        Message.objects.filter(room=room).select_related("author").order_by("-id")[:HISTORY]
    )
    said.reverse()
    context = {
        "incident": incident,
        "room": room,
        # Not "messages": that name is the flash messages of the page's frame.
        "room_messages": said,
        "last_message_id": said[-1].pk if said else 0,
        "say_url": request.path,
        "problem": problem or "",
    }
    return render(request, "warroom/room.html", context, status=400 if problem else 200)
