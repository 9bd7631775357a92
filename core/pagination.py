"""Cursor pagination, ordered per view."""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist, ValidationError
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination


class CheckedCursorPagination(CursorPagination):
    """A cursor paginator that refuses a tampered cursor with 404 instead of failing in the query.

    A cursor carries the position as text; one that does not fit the ordering field (say `abc`
    for a date-time) would otherwise reach the database lookup and fail there.
    """

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            name = self.ordering[0].lstrip("-")
            try:
                self._model._meta.get_field(name).to_python(cursor.position)
            except FieldDoesNotExist:
                pass  # an annotation: nothing to check it against
            except ValidationError:
                raise NotFound(self.invalid_cursor_message) from None
        return cursor


def cursor_by(*ordering: str, page_size: int = 50) -> type[CursorPagination]:
    """Return a cursor paginator ordered by `ordering` (page size overridable by ?page_size=)."""
    return type(
        "Cursor_" + "_".join(o.strip("-") for o in ordering),
        (CheckedCursorPagination,),
        {
            "ordering": ordering,
            "page_size": page_size,
            "page_size_query_param": "page_size",
            "max_page_size": 500,
        },
    )
