"""Verification codes' limits hold per person and per number (review L5): deleting a contact
method and adding it again, changing its address back, or another account adding the same
number resets neither the resend limit nor the wrong-code budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from oncall import people, verify_limits
from oncall.models import ContactKind, VerificationBudget
from oncall.tasks import forget_verification_budgets
from tests.conftest import _client_for
from tests.helpers.api import API, assert_error
from tests.oncall.builders import make_person

NOON = datetime(2025, 6, 2, 12, tzinfo=UTC)
NUMBER = "+14155550100"


@pytest.fixture
def ann(db):
    return make_person("ann")


@pytest.fixture
def at_noon():
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


def fresh_method(user, number: str = NUMBER):
    return people.add_contact_method(user, ContactKind.SMS, number)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_deleting_and_re_adding_a_number_does_not_send_another_code_at_once(ann, at_noon):
    method = fresh_method(ann)
    people.issue_verification_code(method)
    people.delete_contact_method(method)

    again = fresh_method(ann)
    with pytest.raises(people.VerificationFailed, match="ask again in 30 s"):
        people.issue_verification_code(again)
    at_noon.shift(timedelta(seconds=31))
    assert people.issue_verification_code(again)


def test_changing_the_address_back_does_not_send_another_code_at_once(ann, at_noon):
    method = fresh_method(ann)
    people.issue_verification_code(method)
    people.update_contact_method(method, address="+14155550111")
    people.update_contact_method(method, address=NUMBER)
    with pytest.raises(people.VerificationFailed, match="moments ago"):
        people.issue_verification_code(method)


def test_another_account_cannot_have_the_same_number_texted_at_once(ann, at_noon):
    people.issue_verification_code(fresh_method(ann))
    other = fresh_method(make_person("mallory"))
    with pytest.raises(people.VerificationFailed, match="moments ago"):
        people.issue_verification_code(other)


def test_one_person_cannot_have_a_list_of_numbers_texted_at_once(ann, at_noon):
    people.issue_verification_code(fresh_method(ann))
    with pytest.raises(people.VerificationFailed, match="moments ago"):
        people.issue_verification_code(fresh_method(ann, "+14155550111"))


def test_the_api_answers_429_for_a_re_added_number(ann, at_noon):
    client = _client_for(ann)
    created = client.post(
        API + "me/contact-methods/", {"kind": "sms", "address": NUMBER}, format="json"
    ).json()
    assert client.post(f"{API}me/contact-methods/{created['id']}/verify/").status_code < 300
    client.delete(f"{API}me/contact-methods/{created['id']}/")
    again = client.post(
        API + "me/contact-methods/", {"kind": "sms", "address": NUMBER}, format="json"
    ).json()
    response = client.post(f"{API}me/contact-methods/{again['id']}/verify/")
    assert_error(response, 429, "moments ago")


def test_the_wrong_code_budget_is_not_reset_by_deleting_and_re_adding(ann, at_noon):
    for _ in range(verify_limits.MAX_FAILURES // people.MAX_ATTEMPTS):
        method = fresh_method(ann)
        code = people.issue_verification_code(method)
        for _ in range(people.MAX_ATTEMPTS):
            with pytest.raises(people.VerificationFailed, match="wrong code"):
                people.confirm_verification(method, wrong(code))
        people.delete_contact_method(method)
        at_noon.shift(timedelta(seconds=31))

    method = fresh_method(ann)
    code = people.issue_verification_code(method)
    with pytest.raises(people.VerificationFailed, match="too many wrong codes for \\+14155550100"):
        people.confirm_verification(method, code)  # not even the right one, for an hour
    at_noon.shift(verify_limits.FAILURE_WINDOW)
    code = people.issue_verification_code(method)
    assert people.confirm_verification(method, code).is_verified


def test_old_budgets_are_forgotten_by_the_periodic_task(ann, at_noon):
    people.issue_verification_code(fresh_method(ann))
    assert VerificationBudget.objects.count() == 1
    at_noon.shift(timedelta(hours=23))
    assert forget_verification_budgets() == 0
    at_noon.shift(timedelta(hours=2))
    assert forget_verification_budgets() == 1
