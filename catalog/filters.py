import django_filters
from django.db.models import Q

from inventory_site.api.filters import ApiFilterSet, BooleanFilter

from .models import Product


class ProductFilter(ApiFilterSet):
    search = django_filters.CharFilter(method="filter_search", help_text="Part of SKU or name.")
    is_active = BooleanFilter()

    class Meta:
        model = Product
        fields = ["search", "is_active"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(sku__icontains=value) | Q(name__icontains=value))
