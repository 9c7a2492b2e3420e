"""Read queries for stock levels and the ledger."""

from django.db.models import Count, Exists, F, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from .models import Movement, StockLevel


def stock_levels_with_ledger_drift() -> QuerySet[StockLevel]:
    """Stock levels whose values disagree with their ledger.

    A level is consistent when ``on_hand`` and ``reserved`` equal the sums of its
    movements' deltas and ``version`` equals the number of its movements (one movement
    per change). Each row is annotated with ``ledger_on_hand``, ``ledger_reserved`` and
    ``ledger_changes``.
    """
    ledger = (
        Movement.objects.filter(store=OuterRef("store"), product=OuterRef("product"))
        .order_by()
        .values("store", "product")
    )

    def ledger_total(aggregate):
        return Coalesce(Subquery(ledger.annotate(total=aggregate).values("total")), 0)

    return (
        StockLevel.objects.select_related("store", "product")
        .annotate(
            ledger_on_hand=ledger_total(Sum("delta_on_hand")),
            ledger_reserved=ledger_total(Sum("delta_reserved")),
            ledger_changes=ledger_total(Count("pk")),
        )
        .exclude(
            on_hand=F("ledger_on_hand"),
            reserved=F("ledger_reserved"),
            version=F("ledger_changes"),
        )
        .order_by("pk")
    )


def movements_without_stock_level() -> QuerySet[Movement]:
    """Ledger rows whose (store, product) has no stock level at all."""
    return Movement.objects.exclude(
        Exists(StockLevel.objects.filter(store=OuterRef("store"), product=OuterRef("product")))
    ).select_related("store", "product")
