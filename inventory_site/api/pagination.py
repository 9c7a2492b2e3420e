from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """``?page=`` and ``?page_size=``; a page size above the cap is clamped, not refused."""

    page_size_query_param = "page_size"
    max_page_size = 200
