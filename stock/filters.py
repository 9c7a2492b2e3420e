import django_filters
from django.db.models import F, Q
from django.utils import timezone

from inventory_site.api.filters import UtcIsoDateTimeFilter

from .models import Movement, MovementKind, Reservation, ReservationStatus, StockLevel


class StockLevelFilter(django_filters.FilterSet):
    sku = django_filters.CharFilter(field_name="product__sku")
    low_stock = django_filters.BooleanFilter(
        method="filter_low_stock", help_text="true: available at or below the reorder point."
    )
    search = django_filters.CharFilter(method="filter_search", help_text="Part of SKU or name.")

    class Meta:
        model = StockLevel
        fields = ["sku", "low_stock", "search"]

    def filter_low_stock(self, queryset, name, value):
        low = Q(available__lte=F("reorder_point"))
        return queryset.filter(low) if value else queryset.exclude(low)

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(product__sku__icontains=value) | Q(product__name__icontains=value))


class MovementFilter(django_filters.FilterSet):
    sku = django_filters.CharFilter(field_name="product__sku")
    kind = django_filters.ChoiceFilter(choices=MovementKind.choices)
    since = UtcIsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601; movements at or after."
    )

    class Meta:
        model = Movement
        fields = ["sku", "kind", "since"]


class ReservationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=ReservationStatus.choices,
        method="filter_status",
        help_text="As shown: a hold past its expiry counts as expired.",
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
