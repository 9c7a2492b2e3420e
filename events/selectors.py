"""Reads of the stock event log."""

from datetime import datetime

from django.db.models import QuerySet

from stores.models import Store

from .models import StockEvent

# What a page of events shows: the event and its product's SKU, nothing else of either.
LISTED_FIELDS = [
    "seq", "type", "product", "product__sku", "on_hand", "reserved", "available",
    "reorder_point", "version", "at",
]  # fmt: skip


def events_of_store(store: Store) -> QuerySet[StockEvent]:
    """``store``'s events in ``seq`` order, with their SKUs in the same query: filtered
    by ``seq`` (``seq > after``), they are read through the (store, seq) unique index in
    its order, however long the log."""
    return (
        StockEvent.objects.filter(store=store)
        .select_related("product")
        .only(*LISTED_FIELDS)
        .order_by("seq")
    )


def events_older_than(cutoff: datetime) -> QuerySet[StockEvent]:
    """Every store's events that happened before ``cutoff``, the oldest first (the
    ``at`` index)."""
    return StockEvent.objects.filter(at__lt=cutoff).order_by("at")
