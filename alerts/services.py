"""Writes for integrations."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from alerts.models import Integration, new_integration_token


@transaction.atomic
def rotate_integration_token(integration: Integration) -> Integration:
    """Give `integration` a new secret token; the old one is refused from now on."""
    integration = Integration.objects.select_for_update().get(pk=integration.pk)
    integration.token = new_integration_token()
    integration.token_rotated_at = timezone.now()
    integration.save(update_fields=["token", "token_rotated_at"])
    return integration
