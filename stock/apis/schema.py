"""OpenAPI parameters shared by the stock endpoints."""

from drf_spectacular.utils import OpenApiParameter

from ..idempotency import HEADER as IDEMPOTENCY_HEADER

IDEMPOTENCY_KEY = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    location=OpenApiParameter.HEADER,
    required=False,
    description="1-255 characters; a retry with the same key and body replays the answer.",
)
