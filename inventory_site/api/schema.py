"""OpenAPI descriptions of the error bodies, so every endpoint documents what it answers."""

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


class ValidationErrorSerializer(ErrorSerializer):
    errors = serializers.DictField(help_text="Messages by field (nested for list items).")


class ShortageSerializer(serializers.Serializer):
    sku = serializers.CharField()
    requested = serializers.IntegerField()
    available = serializers.IntegerField()


INACTIVE_CODES = ["product_inactive", "store_inactive"]


class StockConflictSerializer(ErrorSerializer):
    code = serializers.ChoiceField(choices=["insufficient_stock", *INACTIVE_CODES])
    shortages = ShortageSerializer(
        many=True, required=False, help_text="With insufficient_stock: every short line."
    )
    available = serializers.IntegerField(
        required=False, help_text="With a single short line: what is available of it."
    )


class ReservationNotActiveSerializer(ErrorSerializer):
    code = serializers.ChoiceField(choices=["reservation_not_active", *INACTIVE_CODES])
    status = serializers.ChoiceField(
        choices=["committed", "released", "expired"],
        required=False,
        help_text="With reservation_not_active: what the reservation is now.",
    )


class VersionMismatchSerializer(ErrorSerializer):
    current_version = serializers.IntegerField()


ERRORS = {
    400: OpenApiResponse(ValidationErrorSerializer, "Malformed or invalid request."),
    401: OpenApiResponse(ErrorSerializer, "No or bad credentials."),
    403: OpenApiResponse(ErrorSerializer, "The role does not allow this."),
    404: OpenApiResponse(ErrorSerializer, "Unknown, or not visible to this user."),
    409: OpenApiResponse(
        StockConflictSerializer,
        "Not enough available stock, or the product or store is deactivated.",
    ),
    412: OpenApiResponse(VersionMismatchSerializer, "If-Match does not match the version."),
    413: OpenApiResponse(ErrorSerializer, "The request body is larger than the limit."),
    415: OpenApiResponse(ErrorSerializer, "The body is not JSON (Content-Type)."),
    422: OpenApiResponse(ErrorSerializer, "Idempotency-Key reused with another request."),
    429: OpenApiResponse(ErrorSerializer, "Rate limit hit; see Retry-After."),
}


def errors(*statuses: int) -> dict:
    """The error responses for ``statuses``; 401 and 429 apply to every endpoint, and 413
    and 415 to every one that reads a body (those that can answer 400)."""
    implied = {401, 429} | ({413, 415} if 400 in statuses else set())
    return {status: ERRORS[status] for status in sorted(implied | set(statuses))}


def paginated(serializer_class, name: str):
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )
