"""API fields that name a person."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import User

USERNAME_MOST = User._meta.get_field("username").max_length or 150


class PersonField(serializers.SlugRelatedField):
    """An active person, by username. A value no username can be (NUL, which PostgreSQL text
    cannot hold, or too long) is "no such person" (400), never a database error."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("slug_field", "username")
        kwargs.setdefault("queryset", User.objects.filter(is_active=True))
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and ("\x00" in data or len(data) > USERNAME_MOST):
            shown = data.replace("\x00", "\\0")[:USERNAME_MOST]
            self.fail("does_not_exist", slug_name=self.slug_field, value=shown)
        return super().to_internal_value(data)
