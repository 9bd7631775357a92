"""Setup: runbooks, versioned Markdown: an editor with a live preview, and the history of
each runbook with every version viewable and compared with the one before."""

from __future__ import annotations

import difflib

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.html import format_html

from accounts.audit import snapshot
from runbooks.models import MAX_RUNBOOK_BODY, Runbook, RunbookVersion
from warroom.markdown import render as render_markdown
from web.access import role_required
from web.views.setup.common import READ, WRITE, page_of, render_page, save_audited
from web.views.setup.forms import RunbookForm, matchers_text

MAX_DIFF_LINES = 2000


@role_required(read=READ, write=WRITE)
def runbook_list(request):
    """List runbooks in matching order: a service's own before the any-service ones."""
    runbooks = Runbook.objects.select_related("service").order_by("position", "id")
    page = page_of(request, runbooks)
    for runbook in page:
        runbook.matchers_text = matchers_text(runbook.matchers)
    return render_page(request, "web/setup/runbooks.html", {"page": page})


@role_required(read=READ, write=WRITE)
def runbook_edit(request, runbook_id: int | None = None):
    """Create or edit a runbook; every save that changes it keeps a version."""
    runbook = get_object_or_404(Runbook, pk=runbook_id) if runbook_id is not None else None
    before = snapshot(runbook) if runbook else None
    form = RunbookForm(request.POST or None, instance=runbook)
    preview = None
    if request.method == "POST" and "preview" in request.POST:
        # The no-JavaScript preview: show the rendered text above the unsaved form.
        preview = render_markdown(
            request.POST.get("body", "")[:MAX_RUNBOOK_BODY], limit=MAX_RUNBOOK_BODY
        )
    elif request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        save_audited(request.user, saved, before, author=request.user)
        messages.success(request, f"Saved runbook {saved.title} (version {saved.version}).")
        return redirect("web-setup-runbook", runbook_id=saved.pk)
    elif runbook is not None and request.method == "GET":
        preview = render_markdown(runbook.body, limit=MAX_RUNBOOK_BODY)
    context = {"form": form, "runbook": runbook, "preview": preview}
    return render_page(request, "web/setup/runbook_form.html", context)


@role_required(read=READ, write=WRITE)
def runbook_preview(request):
    """Render posted Markdown (`body`) as the incident page will show it: an htmx fragment."""
    html = render_markdown(request.POST.get("body", "")[:MAX_RUNBOOK_BODY], limit=MAX_RUNBOOK_BODY)
    return render_page(request, "web/setup/_preview.html", {"preview": html})


@role_required(read=READ, write=WRITE)
def runbook_versions(request, runbook_id: int):
    """List a runbook's versions, newest first."""
    runbook = get_object_or_404(Runbook, pk=runbook_id)
    versions = runbook.versions.select_related("author").defer("body").order_by("-number")
    context = {"runbook": runbook, "page": page_of(request, versions)}
    return render_page(request, "web/setup/runbook_versions.html", context)


@role_required(read=READ, write=WRITE)
def runbook_version(request, runbook_id: int, number: int):
    """Show one version, rendered, and what changed from the version before."""
    runbook = get_object_or_404(Runbook, pk=runbook_id)
    version = get_object_or_404(
        RunbookVersion.objects.select_related("author", "service"), runbook=runbook, number=number
    )
    previous = (
        RunbookVersion.objects.filter(runbook=runbook, number__lt=number)
        .order_by("-number")
        .first()
    )
    context = {
        "runbook": runbook,
        "version": version,
        "previous": previous,
        "matchers": matchers_text(version.matchers),
        "rendered": render_markdown(version.body, limit=MAX_RUNBOOK_BODY),
        "diff": _diff(previous, version) if previous else [],
    }
    return render_page(request, "web/setup/runbook_version.html", context)


def _diff(old: RunbookVersion, new: RunbookVersion) -> list:
    """Return the unified diff of two versions' bodies as (css class, escaped line) pairs."""
    lines = difflib.unified_diff(
        old.body.splitlines(),
        new.body.splitlines(),
        f"version {old.number}",
        f"version {new.number}",
        lineterm="",
    )
    result = []
    for index, line in enumerate(lines):
        if index >= MAX_DIFF_LINES:
            result.append(("diff-meta", "… (diff cut short)"))
            break
        css = {"+": "diff-add", "-": "diff-del", "@": "diff-meta"}.get(line[:1], "")
        if line.startswith(("+++", "---")):
            css = "diff-meta"
        result.append((css, format_html("{}", line)))
    return result


urlpatterns = [
    path("setup/runbooks/", runbook_list, name="web-setup-runbooks"),
    path("setup/runbooks/new/", runbook_edit, name="web-setup-runbook-new"),
    path("setup/runbooks/preview/", runbook_preview, name="web-setup-runbook-preview"),
    path("setup/runbooks/<int:runbook_id>/", runbook_edit, name="web-setup-runbook"),
    path(
        "setup/runbooks/<int:runbook_id>/versions/",
        runbook_versions,
        name="web-setup-runbook-versions",
    ),
    path(
        "setup/runbooks/<int:runbook_id>/versions/<int:number>/",
        runbook_version,
        name="web-setup-runbook-version",
    ),
]
