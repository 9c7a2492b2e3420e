from django.db.models import Q
from django.utils import timezone
from django_filters import CharFilter, ChoiceFilter

from catalog.selectors import product_by_sku
from inventory_site.api.filters import (
    ApiFilterSet,
    BooleanFilter,
    CharInFilter,
    OrderingFilter,
    UtcIsoDateTimeFilter,
)

from .models import LOW_STOCK, Movement, MovementKind, Reservation, ReservationStatus, StockLevel

# SKUs one ?sku= may name: a page of levels (the largest page size).
MAX_SKUS = 200


class StockLevelFilter(ApiFilterSet):
    sku = CharInFilter(
        field_name="product__sku",
        max_values=MAX_SKUS,
        help_text=f"One SKU, or several separated by commas (at most {MAX_SKUS}).",
    )
    low_stock = BooleanFilter(
        method="filter_low_stock", help_text="true: available at or below the reorder point."
    )
    search = CharFilter(method="filter_search", help_text="Part of SKU or name.")
    ordering = OrderingFilter(
        fields=[
            ("product__sku", "sku"),
            ("on_hand", "on_hand"),
            ("available", "available"),
            ("reorder_point", "reorder_point"),
            ("updated_at", "updated_at"),
        ],
        tiebreaker="product__sku",
        help_text="Fields to order by, separated by commas; a leading - reverses one. "
        "Default: sku.",
    )

    class Meta:
        model = StockLevel
        fields = ["sku", "low_stock", "search"]

    def filter_low_stock(self, queryset, name, value):
        low = LOW_STOCK
        return queryset.filter(low) if value else queryset.exclude(low)

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(product__sku__icontains=value) | Q(product__name__icontains=value))


class MovementFilter(ApiFilterSet):
    """The ledger of one store, newest first, a page at a time by cursor: each filter
    has an index of its own that gives the rows in id order (``Movement.Meta.indexes``),
    and ``since`` is read along (store, -id), where the newest movements come first."""

    sku = CharFilter(method="filter_sku")
    kind = ChoiceFilter(choices=MovementKind.choices)
    since = UtcIsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601; movements at or after."
    )
    ordering = ChoiceFilter(
        choices=[(value, value) for value in ("-id", "id", "-created_at", "created_at")],
        method="filter_ordering",
        help_text="-id (the default) or -created_at: newest first; id or created_at: "
        "oldest first. Both follow the order the ledger recorded the movements in.",
    )

    class Meta:
        model = Movement
        fields = ["sku", "kind", "since"]

    def filter_sku(self, queryset, name, value):
        """By the product's id, looked up first (``catalog.selectors``): the rows then
        come from the index (store, product, -id) in order."""
        product = product_by_sku(value)
        return queryset.none() if product is None else queryset.filter(product_id=product.pk)

    def filter_ordering(self, queryset, name, value):
        """By id, for both fields: the cursor follows one unique column, and ids are
        given in the order movements are recorded. (``created_at`` is stamped just
        before the insert, so two movements written concurrently may carry times a few
        milliseconds out of their id order.)"""
        return queryset.order_by("id" if value in ("id", "created_at") else "-id")


class ReservationFilter(ApiFilterSet):
    status = ChoiceFilter(
        choices=ReservationStatus.choices,
        method="filter_status",
        help_text="As shown: a hold past its expiry counts as expired.",
    )
    ordering = OrderingFilter(
        fields=["created_at", "expires_at", "id"],
        tiebreaker="id",
        help_text="Fields to order by, separated by commas; a leading - reverses one. "
        "Default: -created_at.",
    )

    class Meta:
        model = Reservation
        fields = ["status"]

    def filter_status(self, queryset, name, value):
        due = Q(status=ReservationStatus.ACTIVE, expires_at__lte=timezone.now())
        if value == ReservationStatus.ACTIVE:
            return queryset.filter(status=value).exclude(due)
        if value == ReservationStatus.EXPIRED:
            return queryset.filter(Q(status=value) | due)
        return queryset.filter(status=value)
