"""The stock event log in the admin: read-only, each user seeing their stores' events
(``StoreScopedAdmin``), by type and by SKU."""

from django.contrib import admin

from catalog.selectors import product_by_sku
from stores.admin import StoreFilter, StoreScopedAdmin

from .models import StockEvent
from .webhooks import admin as webhook_admin  # noqa: F401 - registers the webhooks' pages


@admin.register(StockEvent)
class StockEventAdmin(StoreScopedAdmin):
    """Newest first within a store, read along the (store, seq) index backwards; staff's
    list of every store goes store by store the same way until narrowed to one."""

    list_display = [
        "seq", "at", "store", "sku", "type", "on_hand", "reserved", "available",
        "reorder_point",
    ]  # fmt: skip
    list_select_related = ["store", "product"]
    list_filter = [StoreFilter, "type"]
    search_fields = ["product__sku"]
    search_help_text = "A product's SKU, exactly."
    ordering = ["-store_id", "-seq"]
    # A page of one event: the store and product as text, not links to staff's pages.
    fields = [
        "seq", "at", "store_label", "sku", "type", "on_hand", "reserved", "available",
        "reorder_point", "version", "movement_id",
    ]  # fmt: skip
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        """By the product's id, looked up first (an exact SKU), rather than a join
        matching part of every SKU."""
        term = search_term.strip()
        if not term:
            return queryset, False
        product = product_by_sku(term)
        if product is None:
            return queryset.none(), False
        return queryset.filter(product_id=product.pk), False

    @admin.display(description="SKU")
    def sku(self, event):
        return event.product.sku

    @admin.display(description="store")
    def store_label(self, event):
        return f"{event.store.code} ({event.store.name})"
