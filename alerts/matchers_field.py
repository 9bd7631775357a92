"""The DRF field for label matchers, shared by every API that takes them (routing rules,
silences, runbooks)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from alerts.matchers import OPS, MatcherError, matchers_from_json


class MatcherSchema(serializers.Serializer):
    """How one matcher looks on the wire (documentation only; MatchersField does the work)."""

    # The stubs take this for Field.label; DRF's metaclass pops declared fields off the class.
    label = serializers.CharField()  # type: ignore[assignment]
    op = serializers.ChoiceField(choices=OPS, default="=")
    value = serializers.CharField()


@extend_schema_field(MatcherSchema(many=True))
class MatchersField(serializers.JSONField):
    """A list of `{"label", "op", "value"}` matchers, checked and stored in canonical form."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        try:
            matchers = matchers_from_json(data)
        except MatcherError as exc:
            raise ValidationError(str(exc)) from None
        if any("\x00" in m.label or "\x00" in m.value for m in matchers):
            raise ValidationError("matchers cannot contain NUL characters")
        return [m.to_dict() for m in matchers]
