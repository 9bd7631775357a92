"""Cursor pagination, ordered per view."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


def cursor_by(*ordering: str, page_size: int = 50) -> type[CursorPagination]:
    """Return a cursor paginator ordered by `ordering` (page size overridable by ?page_size=)."""
    return type(
        "Cursor_" + "_".join(o.strip("-") for o in ordering),
        (CursorPagination,),
        {
            "ordering": ordering,
            "page_size": page_size,
            "page_size_query_param": "page_size",
            "max_page_size": 500,
        },
    )
