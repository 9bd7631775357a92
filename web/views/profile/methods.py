"""Web UI: my contact methods — add, verify by code, send a test page, delete."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from accounts.audit import CREATED, DELETED, record_change, snapshot
from accounts.models import Role
from oncall import people
from oncall.channels.base import DeliveryError
from oncall.channels.registry import channel_for
from oncall.models import ContactMethod
from oncall.testpage import send_test_page
from web.access import role_required
from web.views.profile.forms import CodeForm, ContactMethodForm
from web.views.profile.page import profile_context


def _own_method(request: HttpRequest, method_id: int) -> ContactMethod:
    # Someone else's method is a 404, exactly like one that does not exist.
    return get_object_or_404(
        ContactMethod.objects.select_related("user"), pk=method_id, user=request.user
    )


@require_POST
@role_required(read=Role.OBSERVER, write=Role.RESPONDER)
def add_method(request: HttpRequest) -> HttpResponse:
    """Add an unverified contact method, then offer to send it a code."""
    form = ContactMethodForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                method = people.add_contact_method(
                    request.user,
                    data["kind"],
                    data["address"],
                    label=data["label"],
                    region=data["region"] or None,
                )
                record_change(request.user, CREATED, method, snapshot(method))
        except people.InvalidAddress as exc:
            form.add_error("address", str(exc))
        else:
            messages.success(request, f"Added {method}. Send it a code to verify it.")
            return redirect("web-profile")
    context = profile_context(request, method_form=form)
    return render(request, "web/profile/page.html", context, status=400)


@require_POST
@role_required(read=Role.OBSERVER, write=Role.RESPONDER)
def send_code(request: HttpRequest, method_id: int) -> HttpResponse:
    """Send a verification code to one of my methods and open the form to type it in."""
    method = _own_method(request, method_id)
    if method.is_verified:
        messages.info(request, f"{method} is already verified.")
        return redirect("web-profile")
    try:
        people.start_verification(method)
    except people.VerificationFailed as exc:
        messages.error(request, f"No new code sent: {exc}.")
    except DeliveryError as exc:
        messages.error(request, f"The code could not be sent to {method}: {exc}")
        return redirect("web-profile")
    else:
        messages.success(request, f"A code was sent to {method}; it is valid for 10 minutes.")
    return redirect("web-profile-verify", method_id=method.pk)


@role_required(read=Role.OBSERVER, write=Role.RESPONDER)
def verify_method(request: HttpRequest, method_id: int) -> HttpResponse:
    """Show the code form for one of my methods, and check the code typed in."""
    method = _own_method(request, method_id)
    if method.is_verified:
        messages.info(request, f"{method} is verified.")
        return redirect("web-profile")
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                method = people.confirm_verification(method, form.cleaned_data["code"])
            except people.VerificationFailed as exc:
                form.add_error("code", str(exc))
            else:
                messages.success(request, f"{method} is verified.")
                return redirect("web-profile")
        status = 400
        method.refresh_from_db()  # a wrong or expired code changed what can be done next
    context = {
        "method": method,
        "form": form,
        "code_pending": bool(method.verification_code_hash),
        "console_outbox": channel_for(method.kind) == "console",
    }
    return render(request, "web/profile/verify.html", context, status=status)


@require_POST
@role_required(read=Role.OBSERVER, write=Role.RESPONDER)
def delete_method(request: HttpRequest, method_id: int) -> HttpResponse:
    """Delete one of my methods and the rules that use it."""
    method = _own_method(request, method_id)
    with transaction.atomic():
        before, pk, name = snapshot(method), method.pk, str(method)
        people.delete_contact_method(method)
        record_change(request.user, DELETED, method, before, object_id=pk)
    messages.success(request, f"Deleted {name}.")
    return redirect("web-profile")


@require_POST
@role_required(read=Role.OBSERVER, write=Role.RESPONDER)
def test_method(request: HttpRequest, method_id: int) -> HttpResponse:
    """Send a test page to one of my verified methods."""
    method = _own_method(request, method_id)
    try:
        send_test_page(method, by=request.user)
    except people.ContactMethodError as exc:
        messages.error(request, f"No test page sent: {exc}.")
    except DeliveryError as exc:
        messages.error(request, f"The test page to {method} failed: {exc}")
    else:
        where = " (see the dev outbox)" if channel_for(method.kind) == "console" else ""
        messages.success(request, f"Test page sent to {method}{where}.")
    return redirect("web-profile")


urlpatterns = [
    path("profile/contact-methods/", add_method, name="web-profile-add-method"),
    path(
        "profile/contact-methods/<int:method_id>/send-code/",
        send_code,
        name="web-profile-send-code",
    ),
    path(
        "profile/contact-methods/<int:method_id>/verify/",
        verify_method,
        name="web-profile-verify",
    ),
    path(
        "profile/contact-methods/<int:method_id>/delete/",
        delete_method,
        name="web-profile-delete-method",
    ),
    path(
        "profile/contact-methods/<int:method_id>/test/",
        test_method,
        name="web-profile-test-method",
    ),
]
