"""People, their one global role, and their personal API tokens."""

from __future__ import annotations

import hashlib
import secrets
from typing import ClassVar, Self

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models

TOKEN_PREFIX = "mst_"  # noqa: S105 (a prefix, not a secret)


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"  # configures
    RESPONDER = "responder", "Responder"  # acts on incidents
    OBSERVER = "observer", "Observer"  # reads

    @property
    def rank(self) -> int:
        return {"observer": 0, "responder": 1, "admin": 2}[self.value]


class MusterUserManager(UserManager):
    def create_superuser(self, username, email=None, password=None, **extra_fields):
        extra_fields.setdefault("role", Role.ADMIN)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.RESPONDER)

    objects: ClassVar[MusterUserManager[Self]] = MusterUserManager()

    def has_role(self, needed: Role | str) -> bool:
        """Return whether this person's role is at least `needed`."""
        if not self.is_active:
            return False
        if self.is_superuser:
            return True
        return Role(self.role).rank >= Role(needed).rank


def hash_token(token: str) -> str:
    """Return the stored form of an API token (tokens are random, so a fast hash suffices)."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self):
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiToken(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    # The first characters, so people can tell their tokens apart; never enough to use.
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


def new_token_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class AuditEntry(models.Model):
    """Who changed which schedule, override, policy, integration or rule, and when.

    It lives here, beside the people, because every app records changes and all may import
    accounts; oncall and alerts both write it without importing each other.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=16)  # created | updated | deleted
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    summary = models.TextField()
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_type}"
