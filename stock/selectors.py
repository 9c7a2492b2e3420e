"""Read queries for stock levels and the ledger."""

from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Prefetch, QuerySet, Subquery, Sum, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, RowNumber

from catalog.models import Product
from stores.access import stores_visible_to
from stores.models import Store

from .models import LOW_STOCK, Movement, Reservation, ReservationLine, ReservationStatus, StockLevel


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


def stock_levels_with_reservation_drift() -> QuerySet[StockLevel]:
    """Stock levels whose ``reserved`` differs from the units their active reservations
    hold (annotated as ``held``)."""
    held = (
        ReservationLine.objects.filter(
            reservation__status=ReservationStatus.ACTIVE,
            reservation__store=OuterRef("store"),
            product=OuterRef("product"),
        )
        .order_by()
        .values("product")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    return (
        StockLevel.objects.select_related("store", "product")
        .annotate(held=Coalesce(Subquery(held), 0))
        .exclude(reserved=F("held"))
        .order_by("pk")
    )


def movements_without_stock_level() -> QuerySet[Movement]:
    """Ledger rows whose (store, product) has no stock level at all."""
    return Movement.objects.exclude(
        Exists(StockLevel.objects.filter(store=OuterRef("store"), product=OuterRef("product")))
    ).select_related("store", "product")


def stock_levels_of_store(store: Store) -> QuerySet[StockLevel]:
    return (
        StockLevel.objects.filter(store=store)
        .select_related("store", "product")
        .order_by("product__sku")
    )


def stock_level_or_zero(store: Store, product: Product) -> StockLevel:
    """The level of ``product`` in ``store``; a product never stocked there reads as an
    unsaved zero level at version 0."""
    level = StockLevel.objects.filter(store=store, product=product).first()
    if level is None:
        return StockLevel(
            store=store,
            product=product,
            on_hand=0,
            reserved=0,
            available=0,
            version=0,
            updated_at=None,
        )
    level.store, level.product = store, product
    return level


def stock_levels_of_product_visible_to(product: Product, user) -> QuerySet[StockLevel]:
    return (
        StockLevel.objects.filter(product=product, store__in=stores_visible_to(user))
        .select_related("store")
        .order_by("store__code")
    )


def total_available(levels: QuerySet[StockLevel]) -> int:
    """The units available over ``levels``, summed in the database."""
    return levels.aggregate(total=Coalesce(Sum("available"), 0))["total"]


def movements_of_store(store: Store) -> QuerySet[Movement]:
    return Movement.objects.filter(store=store).select_related("product", "actor").order_by("-id")


def reservations_of_store(store: Store) -> QuerySet[Reservation]:
    return (
        Reservation.objects.filter(store=store)
        .select_related("store")
        .prefetch_related(Prefetch("lines", ReservationLine.objects.select_related("product")))
        .order_by("-created_at", "pk")
    )


def low_stock_levels_of_store(store: Store) -> list[StockLevel]:
    """Levels at or below their reorder point, the furthest below it first (then by
    SKU). Read in the order of the store's index and sorted here: the database would
    sort the same few rows, and an index to spare it would have to cover ``available``,
    which every sale changes (no update of a level could then be a HOT update)."""
    levels = StockLevel.objects.filter(LOW_STOCK, store=store).select_related("store", "product")
    return sorted(
        levels.order_by(),
        key=lambda level: (level.available - level.reorder_point, level.product.sku),
    )


def recent_movements_by_product(store: Store, products, *, per_product: int) -> dict:
    """The latest ``per_product`` movements of each of ``products`` in ``store``, newest
    first, in one query: {product id: [Movement, ...]}.

    On PostgreSQL each level's are read through the index (store, product, -id), at most
    ``per_product`` rows per level however long its history (a LATERAL join); SQLite,
    which has no LATERAL, ranks the levels' movements with a window function."""
    product_ids = [getattr(product, "pk", product) for product in products]
    if not product_ids:
        return {}
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Movement._meta.db_table)
        latest = RawSQL(
            "SELECT latest.id FROM unnest(%s::bigint[]) AS level (product_id)"
            " CROSS JOIN LATERAL ("
            f"  SELECT id FROM {table} WHERE store_id = %s AND product_id = level.product_id"
            "   ORDER BY id DESC LIMIT %s"
            " ) AS latest",
            [product_ids, store.pk, per_product],
        )
        movements = Movement.objects.filter(pk__in=latest).order_by()
    else:
        movements = (
            Movement.objects.filter(store=store, product__in=product_ids)
            .annotate(
                rank=Window(RowNumber(), partition_by=[F("product_id")], order_by=F("id").desc())
            )
            .filter(rank__lte=per_product)
        )
    recent: dict[int, list[Movement]] = {}
    for movement in sorted(
        movements.select_related("actor"), key=lambda row: (row.product_id, -row.pk)
    ):
        recent.setdefault(movement.product_id, []).append(movement)
    return recent
