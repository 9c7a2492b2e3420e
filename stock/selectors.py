"""Read queries for stock levels, the ledger and bulk jobs."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection, connections, router, transaction
from django.db.models import (
    Count,
    Exists,
    F,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    Sum,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber

from catalog.models import Product
from stores.access import may_follow_bulk_job, stores_visible_to
from stores.models import Store

from .models import (
    LOW_STOCK,
    BulkJob,
    Movement,
    Reservation,
    ReservationLine,
    ReservationStatus,
    StockLevel,
)


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


@dataclass(frozen=True)
class LedgerDisagreement:
    """One (store, product) whose rows disagree (``ledger_disagreements``): its level
    as stored (``level_id`` None: there is none), what its movements add up to, and
    the units its active reservations hold."""

    store_code: str
    sku: str
    level_id: int | None
    on_hand: int | None
    reserved: int | None
    version: int | None
    ledger_on_hand: int
    ledger_reserved: int
    ledger_changes: int
    held: int

    @property
    def ledger_drift(self) -> bool:
        """The level's numbers are not its movements' sums and count."""
        return self.level_id is not None and (
            (self.on_hand, self.reserved, self.version)
            != (self.ledger_on_hand, self.ledger_reserved, self.ledger_changes)
        )

    @property
    def reservation_drift(self) -> bool:
        return self.level_id is not None and self.reserved != self.held

    @property
    def without_level(self) -> bool:
        """Movements exist for a level that does not."""
        return self.level_id is None and self.ledger_changes > 0


def ledger_disagreements() -> Iterator[LedgerDisagreement]:
    """Every (store, product) where a stock level disagrees with its ledger or its
    active reservations, or movements exist without a level: the checks of
    ``stock_levels_with_ledger_drift``, ``stock_levels_with_reservation_drift`` and
    ``movements_without_stock_level``, in one pass, for every level at once.

    The movements and the levels are read together in (store, product) order, each
    through its index, and grouped as they stream by (one GROUP BY over their UNION
    ALL), so 5,000,000 levels take one read of each table and no memory beyond a group;
    the units active reservations hold (a few rows) are joined to the groups as they
    pass. Only the groups that disagree leave the database, through a server-side cursor;
    their store codes and SKUs are read after. Hashing the groups instead would hold
    millions of them (PostgreSQL estimates far fewer and would choose it: not here).
    """
    movement, level, line, reservation = (
        connection.ops.quote_name(model._meta.db_table)
        for model in (Movement, StockLevel, ReservationLine, Reservation)
    )
    no = "CAST(NULL AS BIGINT)"
    sql = f"""
        SELECT checked.store_id, checked.product_id, checked.level_id, checked.on_hand,
               checked.reserved, checked.version, checked.ledger_on_hand,
               checked.ledger_reserved, checked.ledger_changes, COALESCE(held.held, 0)
        FROM (
            SELECT store_id, product_id, MAX(level_id) AS level_id, MAX(on_hand) AS on_hand,
                   MAX(reserved) AS reserved, MAX(version) AS version,
                   COALESCE(SUM(delta_on_hand), 0) AS ledger_on_hand,
                   COALESCE(SUM(delta_reserved), 0) AS ledger_reserved,
                   COUNT(delta_on_hand) AS ledger_changes
            FROM (
                SELECT store_id, product_id, {no} AS level_id, {no} AS on_hand,
                       {no} AS reserved, {no} AS version, delta_on_hand, delta_reserved
                FROM {movement}
                UNION ALL
                SELECT store_id, product_id, id, on_hand, reserved, version, {no}, {no}
                FROM {level}
            ) AS grouped
            GROUP BY store_id, product_id
        ) AS checked
        LEFT JOIN (
            SELECT hold.store_id, line.product_id, SUM(line.quantity) AS held
            FROM {line} AS line JOIN {reservation} AS hold ON hold.id = line.reservation_id
            WHERE hold.status = %s
            GROUP BY hold.store_id, line.product_id
        ) AS held ON held.store_id = checked.store_id AND held.product_id = checked.product_id
        WHERE (checked.level_id IS NULL AND checked.ledger_changes > 0)
           OR checked.on_hand <> checked.ledger_on_hand
           OR checked.reserved <> checked.ledger_reserved
           OR checked.version <> checked.ledger_changes
           OR checked.reserved <> COALESCE(held.held, 0)
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_hashagg = off")
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, [ReservationStatus.ACTIVE])
            found = [[_integer(number) for number in row] for row in cursor]
    codes = dict(Store.objects.filter(pk__in={row[0] for row in found}).values_list("pk", "code"))
    skus = dict(Product.objects.filter(pk__in={row[1] for row in found}).values_list("pk", "sku"))
    for store_id, product_id, *numbers in found:
        yield LedgerDisagreement(codes[store_id], skus[product_id], *numbers)


def _integer(value) -> int | None:
    """A number as Python's int (PostgreSQL's sums of bigints are numeric)."""
    return None if value is None else int(value)


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
    try:
        # get(), not first(): the model's ordering (by store code and SKU) would join
        # both tables to order the one row.
        level = StockLevel.objects.get(store=store, product=product)
    except StockLevel.DoesNotExist:
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


def low_stock_levels_of_store(store: Store) -> QuerySet[StockLevel]:
    """Levels at or below their reorder point, the furthest below it first."""
    return (
        stock_levels_of_store(store)
        .filter(LOW_STOCK)
        .order_by(F("available") - F("reorder_point"), "product__sku")
    )


def low_stock_levels_in_page_order(store: Store) -> list[StockLevel]:
    """``low_stock_levels_of_store`` in its order, sorted here rather than by the
    database: the rows come from the store's index as they are, where an ORDER BY would
    sort them, and an index giving that order would have to hold ``available``, which
    every sale changes (no update of a level could then be a HOT update)."""
    levels = low_stock_levels_of_store(store).order_by()
    return sorted(
        levels, key=lambda level: (level.available - level.reorder_point, level.product.sku)
    )


def recent_movements_by_product(store: Store, products, *, per_product: int) -> dict:
    """The latest ``per_product`` movements of each of ``products`` in ``store``, newest
    first, with their actors: {product id: [Movement, ...]}.

    On PostgreSQL each level's ids are read through the index (store, product, -id), at
    most ``per_product`` per level however long its history (a LATERAL join: no plan of
    it can read more), then those movements with their actors by id; SQLite, which has
    no LATERAL, ranks the levels' movements with a window function, in one query.

    Both queries read the database the router picks for movements (a replica inside
    ``replica_reads``): ids taken from the primary and rows from a replica that lacks
    the newest would drop those movements without a word."""
    product_ids = [getattr(product, "pk", product) for product in products]
    if not product_ids:
        return {}
    alias = router.db_for_read(Movement)
    database = connections[alias]
    if database.vendor == "postgresql":
        table = database.ops.quote_name(Movement._meta.db_table)
        with database.cursor() as cursor:
            cursor.execute(
                "SELECT latest.id FROM unnest(%s::bigint[]) AS level (product_id)"
                " CROSS JOIN LATERAL ("
                f"  SELECT id FROM {table} WHERE store_id = %s AND product_id = level.product_id"
                "   ORDER BY id DESC LIMIT %s"
                " ) AS latest",
                [product_ids, store.pk, per_product],
            )
            latest = [movement_id for (movement_id,) in cursor.fetchall()]
        movements = (
            Movement.objects.using(alias).filter(pk__in=latest).select_related("actor").order_by()
        )
    else:
        movements = (
            Movement.objects.using(alias)
            .filter(store=store, product__in=product_ids)
            .annotate(
                rank=Window(RowNumber(), partition_by=[F("product_id")], order_by=F("id").desc())
            )
            .filter(rank__lte=per_product)
            .select_related("actor")
        )
    recent: dict[int, list[Movement]] = {}
    for movement in sorted(movements, key=lambda row: (row.product_id, -row.pk)):
        recent.setdefault(movement.product_id, []).append(movement)
    return recent


def bulk_job_for(user, job_id) -> BulkJob | None:
    """The bulk job ``job_id`` with its store, if ``user`` may follow it
    (``stores.access.may_follow_bulk_job``); None for a job they may not see, as for one
    that does not exist or an id that is no UUID. Its items (up to 10,000, only the
    worker reads them) are left in the database."""
    try:
        job_id = uuid.UUID(str(job_id))
    except ValueError:
        return None
    job = BulkJob.objects.defer("items").select_related("store").filter(pk=job_id).first()
    if job is None or not may_follow_bulk_job(user, job.store, created_by_id=job.created_by_id):
        return None
    return job
