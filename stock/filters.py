from django.db.models import Q
from django.utils import timezone
from django_filters import CharFilter, ChoiceFilter

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
    sku = CharFilter(field_name="product__sku")
    kind = ChoiceFilter(choices=MovementKind.choices)
    since = UtcIsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601; movements at or after."
    )
    ordering = OrderingFilter(
        fields=["created_at", "id"],
        tiebreaker="id",
        help_text="created_at or id, a leading - for newest first. Default: -id.",
    )

    class Meta:
        model = Movement
        fields = ["sku", "kind", "since"]


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
