from collections.abc import Mapping

from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema_field,
)
from rest_framework import serializers

from catalog.models import Product, sku_validator
from inventory_site.api.fields import StrictBooleanField, StrictIntegerField
from inventory_site.api.schema import ErrorSerializer, ValidationErrorSerializer

from .models import (
    AdjustmentReason,
    BulkErrorPolicy,
    BulkJob,
    BulkJobStatus,
    BulkMode,
    Movement,
    Reservation,
    ReservationLine,
    ReservationStatus,
    StockLevel,
)
from .services import (
    MAX_BULK_ITEMS,
    MAX_QUANTITY,
    MAX_REFERENCE_LENGTH,
    MAX_RESERVATION_TTL_SECONDS,
    adjustment_sign_problem,
)

MAX_NOTE_LENGTH = 1000
MAX_TRANSFER_LINES = 1000


def quantity_field(**kwargs):
    return StrictIntegerField(min_value=1, max_value=MAX_QUANTITY, **kwargs)


def reference_field():
    return serializers.CharField(
        max_length=MAX_REFERENCE_LENGTH, required=False, allow_blank=True, default=""
    )


def note_field():
    return serializers.CharField(
        max_length=MAX_NOTE_LENGTH, required=False, allow_blank=True, default=""
    )


class StockLevelSerializer(serializers.ModelSerializer):
    """One level. Callers hand it levels with their store and product loaded (the
    selectors ``select_related`` both), so a page of rows costs no query per row."""

    store = serializers.CharField(source="store.code")
    sku = serializers.CharField(source="product.sku")
    product_name = serializers.CharField(source="product.name")
    updated_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        model = StockLevel
        fields = [
            "store", "sku", "product_name", "on_hand", "reserved", "available",
            "reorder_point", "version", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


def stock_level_body(level: StockLevel, **extra) -> dict:
    """What ``StockLevelSerializer(level).data`` holds (plus ``extra`` fields, e.g. a
    ``movement_id``), built directly: a purchase answers one and caches one, and the
    ModelSerializer builds its fields anew for each instance, which cost more than the
    rest of the view's Python (README, "Performance"). The serializers stay the schema;
    a test holds the two to the same output."""
    return {
        "store": level.store.code,
        "sku": level.product.sku,
        "product_name": level.product.name,
        "on_hand": level.on_hand,
        "reserved": level.reserved,
        "available": level.available,
        "reorder_point": level.reorder_point,
        "version": level.version,
        "updated_at": _iso_8601(level.updated_at),
        **extra,
    }


def _iso_8601(moment) -> str | None:
    """As DRF's DateTimeField renders it: in the current time zone, UTC as "Z"."""
    if moment is None:
        return None
    text = timezone.localtime(moment).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class StockOperationResultSerializer(StockLevelSerializer):
    """The answer to a stock operation: the level after it, and the ledger row that
    recorded it (a shop keeps the sale's ``movement_id`` with its order)."""

    movement_id = serializers.IntegerField(
        read_only=True, help_text="The id of the movement this operation recorded."
    )

    class Meta(StockLevelSerializer.Meta):
        fields = [*StockLevelSerializer.Meta.fields, "movement_id"]


class StockLevelReadSerializer(StockLevelSerializer):
    """The GET of one level: where the answer came from, for clients and the schema."""

    source = serializers.ChoiceField(choices=["cache", "database"], read_only=True)

    class Meta(StockLevelSerializer.Meta):
        fields = [*StockLevelSerializer.Meta.fields, "source"]


class ReceiveSerializer(serializers.Serializer):
    quantity = quantity_field()
    reference = reference_field()
    note = note_field()


class AdjustSerializer(serializers.Serializer):
    delta = StrictIntegerField(min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY)
    reason = serializers.ChoiceField(choices=AdjustmentReason.choices)
    note = note_field()

    def validate_delta(self, delta):
        if delta == 0:
            raise serializers.ValidationError("delta must not be 0.")
        return delta

    def validate(self, data):
        """The sign rule is the service's (``adjustment_sign_problem``); asked here too,
        so that the answer names the field to fix."""
        problem = adjustment_sign_problem(data["delta"], data["reason"])
        if problem:
            raise serializers.ValidationError({"delta": [problem]})
        return data


class SetCountSerializer(serializers.Serializer):
    on_hand = StrictIntegerField(min_value=0, max_value=MAX_QUANTITY)
    reason = serializers.ChoiceField(
        choices=AdjustmentReason.choices, required=False, allow_blank=True, default=""
    )
    note = note_field()


class PurchaseSerializer(serializers.Serializer):
    quantity = quantity_field()
    reference = reference_field()


class ReorderPointSerializer(serializers.Serializer):
    reorder_point = StrictIntegerField(min_value=0, max_value=MAX_QUANTITY)


class StockLineSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = quantity_field()


class StockLinesField(serializers.ListField):
    """A list of {sku, quantity}; every SKU is resolved to its Product in one query."""

    child = StockLineSerializer()

    def __init__(self, **kwargs):
        super().__init__(min_length=1, max_length=MAX_TRANSFER_LINES, **kwargs)

    def to_internal_value(self, data):
        lines = super().to_internal_value(data)
        products = Product.objects.in_bulk([line["sku"] for line in lines], field_name="sku")
        errors = [
            {} if line["sku"] in products else {"sku": ["No product has this SKU."]}
            for line in lines
        ]
        if any(errors):
            raise serializers.ValidationError(errors)
        return [{**line, "product": products[line["sku"]]} for line in lines]


class TransferSerializer(serializers.Serializer):
    to_store = serializers.CharField(max_length=50)
    lines = StockLinesField()
    note = note_field()


class TransferLineSerializer(serializers.Serializer):
    sku = serializers.CharField(source="product.sku")
    quantity = serializers.IntegerField()


class TransferResultSerializer(serializers.Serializer):
    reference = serializers.CharField()
    from_store = serializers.CharField()
    to_store = serializers.CharField()
    lines = TransferLineSerializer(many=True)
    source_levels = StockOperationResultSerializer(many=True)
    destination_levels = StockOperationResultSerializer(many=True)


class MovementSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="product.sku")
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)

    class Meta:
        model = Movement
        fields = [
            "id", "sku", "kind", "delta_on_hand", "delta_reserved", "on_hand_after",
            "reserved_after", "reason", "reference", "note", "actor", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class ReservationCreateSerializer(serializers.Serializer):
    lines = StockLinesField()
    ttl_seconds = StrictIntegerField(
        min_value=1,
        max_value=MAX_RESERVATION_TTL_SECONDS,
        required=False,
        help_text="Seconds until the hold expires; RESERVATION_DEFAULT_TTL_SECONDS if absent.",
    )
    reference = reference_field()


class ReservationLineSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="product.sku")

    class Meta:
        model = ReservationLine
        fields = ["sku", "quantity"]


class ReservationSerializer(serializers.ModelSerializer):
    store = serializers.CharField(source="store.code")
    status = serializers.SerializerMethodField()
    lines = ReservationLineSerializer(many=True)

    class Meta:
        model = Reservation
        fields = ["id", "store", "status", "expires_at", "reference", "lines", "created_at"]

    @extend_schema_field({"type": "string", "enum": ReservationStatus.values})
    def get_status(self, reservation) -> str:
        """A hold past its expiry is expired, whether or not a sweep has got to it yet."""
        if (
            reservation.status == ReservationStatus.ACTIVE
            and reservation.expires_at <= timezone.now()
        ):
            return ReservationStatus.EXPIRED
        return reservation.status


# --- Bulk jobs ----------------------------------------------------------------------


def bulk_item_schema(value_field: str, value_schema: dict) -> dict:
    """The JSON schema of an item of a set or adjust job (no other field is taken)."""
    count = {"type": "integer", "minimum": 0, "maximum": MAX_QUANTITY}
    return {
        "type": "object",
        "properties": {
            "sku": {"type": "string", "maxLength": 64, "pattern": sku_validator.regex.pattern},
            value_field: value_schema,
            "expected_on_hand": {
                **count,
                "description": "Apply only if on_hand is still this (else version_mismatch).",
            },
        },
        "required": ["sku", value_field],
        "additionalProperties": False,
    }


def bulk_items_schema(item: dict) -> dict:
    return {"type": "array", "items": item, "minItems": 1, "maxItems": MAX_BULK_ITEMS}


class BulkItemsField(serializers.ListField):
    """1 to MAX_BULK_ITEMS objects. What is in them is the service's to check
    (``bulk_check``), so that a refusal lists every bad item by its index."""

    child = serializers.DictField()

    def __init__(self, **kwargs):
        super().__init__(min_length=1, max_length=MAX_BULK_ITEMS, **kwargs)

    def run_child_validation(self, data):
        """That each item is an object, and no more: a DictField would validate each of
        10,000 items' values (about 200 ms) only to pass them on as they are."""
        not_objects = {
            index: [self.child.error_messages["not_a_dict"].format(input_type=type(item).__name__)]
            for index, item in enumerate(data)
            if not isinstance(item, dict)
        }
        if not_objects:
            raise serializers.ValidationError(not_objects)
        return list(data)


class BulkJobCreateSerializer(serializers.Serializer):
    """A bulk job: 1 to 10,000 items (``MAX_BULK_ITEMS``), each an object."""

    mode = serializers.ChoiceField(choices=BulkMode.choices)
    reason = serializers.ChoiceField(
        choices=AdjustmentReason.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text="Recorded on every movement; an adjust job without one is a correction.",
    )
    error_policy = serializers.ChoiceField(
        choices=BulkErrorPolicy.choices, required=False, default=BulkErrorPolicy.REJECT_ALL
    )
    items = BulkItemsField()


# The schema of a job, one shape per mode; requests are read with BulkJobCreateSerializer.


@extend_schema_field(
    bulk_items_schema(
        bulk_item_schema(
            "on_hand",
            {"type": "integer", "minimum": 0, "maximum": MAX_QUANTITY, "description": "The count."},
        )
    )
)
class BulkSetItemsField(BulkItemsField):
    pass


@extend_schema_field(
    bulk_items_schema(
        bulk_item_schema(
            "delta",
            {
                "type": "integer",
                "minimum": -MAX_QUANTITY,
                "maximum": MAX_QUANTITY,
                "not": {"enum": [0]},
                "description": "The change, its sign fitting the job's reason.",
            },
        )
    )
)
class BulkAdjustItemsField(BulkItemsField):
    pass


@extend_schema_field({"type": "string", "enum": [BulkMode.SET.value]})
class SetModeField(serializers.Field):
    pass


@extend_schema_field({"type": "string", "enum": [BulkMode.ADJUST.value]})
class AdjustModeField(serializers.Field):
    pass


class BulkSetJobSerializer(BulkJobCreateSerializer):
    """A set job: each item's on_hand becomes the level's count."""

    mode = SetModeField()
    items = BulkSetItemsField()


class BulkAdjustJobSerializer(BulkJobCreateSerializer):
    """An adjust job: each item's delta is added to the level's on_hand."""

    mode = AdjustModeField()
    items = BulkAdjustItemsField()


BULK_JOB_REQUEST = PolymorphicProxySerializer(
    component_name="BulkJobCreate",
    serializers={
        BulkMode.SET.value: BulkSetJobSerializer,
        BulkMode.ADJUST.value: BulkAdjustJobSerializer,
    },
    resource_type_field_name="mode",
)


class BulkJobAcceptedSerializer(serializers.Serializer):
    job = serializers.UUIDField()
    status_url = serializers.URLField(help_text="GET it for the job's progress and errors.")


class BulkItemErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's position in the request, from 0.")
    sku = serializers.CharField(
        allow_null=True, help_text="The item's sku (null if it sent none, or no string)."
    )
    detail = serializers.CharField()
    code = serializers.CharField(
        help_text="invalid, not_found, product_inactive, duplicate_sku (the request is "
        "refused); version_mismatch, insufficient_stock, store_inactive (the worker's)."
    )


class BulkRejectedSerializer(ErrorSerializer):
    errors = BulkItemErrorSerializer(many=True, help_text="Every item that cannot be applied.")


BULK_REFUSAL = OpenApiResponse(
    PolymorphicProxySerializer(
        component_name="BulkJobRefusal",
        serializers=[ValidationErrorSerializer, BulkRejectedSerializer],
        resource_type_field_name=None,
    ),
    "Malformed (errors by field, as on every endpoint), or items that cannot be applied "
    "(errors: a list of every bad item). Nothing was queued.",
)


class BulkJobSerializer(serializers.ModelSerializer):
    store = serializers.CharField(source="store.code")
    status = serializers.ChoiceField(choices=BulkJobStatus.choices)
    errors = BulkItemErrorSerializer(many=True)

    class Meta:
        model = BulkJob
        fields = [
            "id", "store", "status", "total", "applied", "failed", "errors", "created_at",
            "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


# --- The flash-sale gate ---------------------------------------------------------------

GATE_BODY = 'the body is {"enabled": true} or {"enabled": false}'


class FlashSaleGateSwitchSerializer(serializers.Serializer):
    """``{"enabled": true|false}`` and nothing else: a client sending more (``tokens``,
    say) would believe it set something, so another field is a 400 rather than ignored."""

    enabled = StrictBooleanField()

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, Mapping) else []
        refusals = {name: [f"Unknown field; {GATE_BODY}."] for name in unknown}
        try:
            values = super().to_internal_value(data)
        except serializers.ValidationError as error:
            raise serializers.ValidationError({**error.detail, **refusals}) from None
        if refusals:
            raise serializers.ValidationError(refusals)
        return values


class FlashSaleGateSerializer(serializers.Serializer):
    """A level's gate: whether it is on, and what Redis holds for it (null when Redis
    holds nothing: the gate off, the embedded mode, Redis down or not seeded yet)."""

    enabled = serializers.BooleanField()
    tokens = serializers.IntegerField(
        allow_null=True, help_text="Units Redis admits buyers for now (at most available)."
    )
    admitted = serializers.IntegerField(
        allow_null=True, help_text="Purchases and reservations admitted since it was switched on."
    )
    refunded = serializers.IntegerField(
        allow_null=True, help_text="Admitted ones the database refused, tokens given back."
    )
