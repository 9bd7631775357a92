"""A service's chat settings in the API: the channel modes, the shared channels, archiving."""

from __future__ import annotations

import pytest

from incidents.models import Service
from tests.helpers.api import assert_error

pytestmark = pytest.mark.django_db

SERVICES = "/api/v1/services/"
SLACK_ID = "C0123ABCD"
MATTERMOST_ID = "4xp9fdt7pbgium38k5k6w95oeh"


def test_a_new_service_has_the_defaults(as_alice):
    response = as_alice.post(SERVICES, {"name": "payments"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slack_channel_mode"] == "channel-per-incident"
    assert body["mattermost_channel_mode"] == "channel-per-incident"
    assert (body["slack_channel"], body["mattermost_channel"]) == ("", "")
    assert body["archive_chat_channels"] is True


def test_chat_settings_round_trip(as_alice):
    settings = {
        "slack_channel_mode": "shared",
        "slack_channel": SLACK_ID,
        "mattermost_channel_mode": "off",
        "mattermost_channel": MATTERMOST_ID,
        "archive_chat_channels": False,
    }
    response = as_alice.post(SERVICES, {"name": "payments", **settings}, format="json")
    assert response.status_code == 201, response.content
    service_id = response.json()["id"]
    got = as_alice.get(f"{SERVICES}{service_id}/").json()
    assert {key: got[key] for key in settings} == settings
    service = Service.objects.get(pk=service_id)
    assert (service.slack_channel_mode, service.slack_channel) == ("shared", SLACK_ID)
    assert service.archive_chat_channels is False


def test_shared_mode_without_a_shared_channel_is_a_400(as_alice, service):
    response = as_alice.patch(
        f"{SERVICES}{service.pk}/", {"slack_channel_mode": "shared"}, format="json"
    )
    assert_error(response, 400, "slack_channel", "Shared mode needs the service's shared Slack")
    service.refresh_from_db()
    assert service.slack_channel_mode == "channel-per-incident"


def test_shared_mode_with_the_channel_already_set_is_fine(as_alice, service):
    service.mattermost_channel = MATTERMOST_ID
    service.save()
    response = as_alice.patch(
        f"{SERVICES}{service.pk}/", {"mattermost_channel_mode": "shared"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["mattermost_channel_mode"] == "shared"


def test_clearing_the_channel_of_a_shared_service_is_a_400(as_alice, service):
    service.slack_channel_mode, service.slack_channel = "shared", SLACK_ID
    service.save()
    response = as_alice.patch(f"{SERVICES}{service.pk}/", {"slack_channel": ""}, format="json")
    assert_error(response, 400, "Shared mode needs")


@pytest.mark.parametrize(
    "field, value, says",
    [
        ("slack_channel", "#incidents", "not a Slack channel id"),
        ("slack_channel", "c0123abcd", "not a Slack channel id"),
        ("slack_channel", "D0123ABCD", "not a Slack channel id"),
        ("slack_channel", "C" + "A" * 40, "no more than 40 characters"),
        ("mattermost_channel", "town-square", "not a Mattermost channel id"),
        ("mattermost_channel", MATTERMOST_ID.upper(), "not a Mattermost channel id"),
        ("mattermost_channel", MATTERMOST_ID[:-1], "not a Mattermost channel id"),
    ],
)
def test_a_channel_id_of_the_wrong_shape_is_a_400(as_alice, service, field, value, says):
    response = as_alice.patch(f"{SERVICES}{service.pk}/", {field: value}, format="json")
    assert_error(response, 400, field, says)


def test_an_unknown_mode_is_a_400(as_alice, service):
    response = as_alice.patch(
        f"{SERVICES}{service.pk}/", {"slack_channel_mode": "everywhere"}, format="json"
    )
    assert_error(response, 400, "slack_channel_mode")


def test_private_slack_channels_g_ids_are_accepted(as_alice, service):
    response = as_alice.patch(
        f"{SERVICES}{service.pk}/", {"slack_channel": "G0PRIVATE1"}, format="json"
    )
    assert response.status_code == 200, response.content


def test_only_admins_change_chat_settings(as_bob, service):
    response = as_bob.patch(
        f"{SERVICES}{service.pk}/", {"slack_channel_mode": "off"}, format="json"
    )
    assert response.status_code == 403
