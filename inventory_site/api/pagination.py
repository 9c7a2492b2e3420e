import re

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.urls import replace_query_param

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


# A bigint cursor as a client writes it: decimal digits only (no sign, space or point).
_DIGITS = re.compile(r"[0-9]{1,19}")


class AfterPagination(pagination.BasePagination):
    """``?after=<n>`` and ``?page_size=`` (clamped as above), for a log numbered by one
    integer column (``after_field``, e.g. a store's event ``seq``) whose numbers a client
    keeps: the page holds the rows numbered above ``after`` (default 0), in that order,
    read through the index of that column from where the client left off. The answer is
    ``{"results", "next"}``: ``next`` is this URL with ``after`` set to the page's last
    number, or null when no row follows the page (read as one more row than the page
    holds). ``after`` that is not a whole number from 0 up to the bigint's largest is
    400 naming ``after``.

    The queryset arrives filtered to one log (one store's) and ordered by
    ``after_field``."""

    after_field = "seq"
    cursor_query_param = "after"  # also what ``filters.passed_through`` lets through
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    invalid_after_message = "Send a whole number from 0 up: the last number you have read."

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.after = self.get_after(request)
        size = self.get_page_size(request)
        rows = list(queryset.filter(**{f"{self.after_field}__gt": self.after})[: size + 1])
        self.has_next = len(rows) > size
        self.page = rows[:size]
        return self.page

    def get_after(self, request) -> int:
        raw = request.query_params.get(self.cursor_query_param)
        if raw is None:
            return 0
        if not _DIGITS.fullmatch(raw) or int(raw) >= 2**63:
            raise ValidationError({self.cursor_query_param: [self.invalid_after_message]})
        return int(raw)

    def get_page_size(self, request) -> int:
        """As DRF's paginators: a page size that is no positive whole number is the
        default one, a larger one than the cap the cap."""
        try:
            size = int(request.query_params[self.page_size_query_param])
        except (KeyError, ValueError):
            return api_settings.PAGE_SIZE
        return min(size, self.max_page_size) if size > 0 else api_settings.PAGE_SIZE

    def get_next_link(self) -> str | None:
        if not self.has_next:
            return None
        last = getattr(self.page[-1], self.after_field)
        return replace_query_param(self.request.build_absolute_uri(), self.cursor_query_param, last)

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next"],
            "description": (
                "The rows numbered after `after`, in order, and the link to the rows after "
                "them (null when none follow yet: keep the last number and ask again)."
            ),
            "properties": {
                "results": schema,
                "next": {"type": "string", "nullable": True, "format": "uri"},
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": f"The last {self.after_field} read: the page starts after "
                "it. Default 0, the start of the log.",
                "schema": {"type": "integer", "minimum": 0},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page, at most {self.max_page_size} (a larger "
                "number is taken as that).",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]
