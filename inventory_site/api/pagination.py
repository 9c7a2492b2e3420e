from django.core.exceptions import ImproperlyConfigured
from django.db import models
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError

# The most rows one page of any list holds; a larger ?page_size= is clamped to it.
MAX_PAGE_SIZE = 200


class PageNumberPagination(pagination.PageNumberPagination):
    """``?page=`` and ``?page_size=``; a page size above the cap is clamped, not refused."""

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class CursorPagination(pagination.CursorPagination):
    """``?cursor=`` and ``?page_size=`` (clamped as above), for the lists that grow
    without bound (the ledger, the audit log): each page is read from where the one
    before ended, through the index that gives the list its order, and nothing is
    counted, so a page costs the same at a thousand rows as at millions. The answer is
    ``{"next", "previous", "results"}``, without ``count``.

    The list's queryset arrives ordered by one unique integer column (``-id``,
    ``-sequence``: its selector's order, or the one ``?ordering=`` chose), and the cursor
    holds that column's value at the page's edge. A cursor not made here is 400.
    """

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = None  # the queryset's own, see get_ordering
    invalid_cursor_message = "Invalid cursor: use the next or previous link of a page."
    cursor_query_description = (
        "Where the page starts: take it from the next or previous link of a page, as "
        "it is. Without it, the first page."
    )

    def get_ordering(self, request, queryset, view):
        ordering = tuple(queryset.query.order_by)
        if len(ordering) == 1 and isinstance(ordering[0], str):
            field = queryset.model._meta.get_field(ordering[0].removeprefix("-"))
            if field.unique and isinstance(field, models.IntegerField | models.AutoField):
                return ordering
        raise ImproperlyConfigured(
            f"{type(view).__name__}: a cursor-paginated list must be ordered by one unique "
            f"integer column, not {ordering!r}."
        )

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["description"] = (
            "One page, and links to the next and the previous (null at either end). The "
            "list is not counted: there is no count field, so a page costs the same "
            "however long the list."
        )
        return paginated

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            cursor = False
        if cursor is False or (cursor is not None and not _is_bigint(cursor.position)):
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})
        return cursor


def _is_bigint(position: str | None) -> bool:
    """A cursor's position: none (an offset alone) or a number a bigint column holds."""
    if position is None:
        return True
    try:
        return -(2**63) <= int(position) < 2**63
    except ValueError:
        return False
