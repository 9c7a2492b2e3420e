import django_filters

from inventory_site.api.filters import ApiFilterSet, UtcIsoDateTimeFilter
from stores.models import Store

from .models import AuditEvent


class AuditEventFilter(ApiFilterSet):
    store = django_filters.CharFilter(method="filter_store", help_text="Store code.")
    action = django_filters.CharFilter(
        method="filter_action",
        help_text='An action, e.g. "stock.sale"; one ending in "." matches a family ("stock.").',
    )
    actor = django_filters.CharFilter(field_name="actor_username", help_text="Username.")
    since = UtcIsoDateTimeFilter(
        field_name="occurred_at", lookup_expr="gte", help_text="ISO 8601; events at or after."
    )

    class Meta:
        model = AuditEvent
        fields = ["store", "action", "actor", "since"]

    def filter_store(self, queryset, name, value):
        """By the store's id, read first: ``store_id = 7`` is read through the index
        (store_id, -sequence) in order, which a subquery on the code is not."""
        store_id = Store.objects.filter(code=value).values_list("pk", flat=True).first()
        return queryset.none() if store_id is None else queryset.filter(store_id=store_id)

    def filter_action(self, queryset, name, value):
        if value.endswith("."):
            return queryset.filter(action__startswith=value)
        return queryset.filter(action=value)
