"""Row locks on stock levels, taken in one place and one order.

Every multi-row stock change locks its rows here, in primary-key order, so two
transactions that touch the same rows always queue instead of deadlocking.

The lock order of a stock change, whole:

1. its stock levels, in primary-key order (here; a single-row change locks its one row
   with its guarded UPDATE; a bulk batch locks its rows in its own statement, in id order);
2. then, once it holds every level lock it will take, the ``StoreEventSequence`` rows of
   the stores it changed, in store id order, by ONE upsert that takes the numbers of its
   events (``event_log``; inside the guarded statement for a single-row change, fed by
   the UPDATE's row, so a refused change locks none). They stay locked until the commit,
   which is what numbers a store's events in commit order without a gap.

A transaction that makes several changes one after another (a caller's ``atomic`` around
several services) would take a level lock after a sequence lock; against a concurrent
change of that level PostgreSQL then detects a deadlock and rolls one of them back. So
such a caller creates and locks every level it will change first (``ensure_stock_levels``
then ``lock_stock_levels``), as ``import_v1_json`` does; a level created later would
wait, holding the sequence row, for a change that created it and waits for that row.
The services themselves never do: a reservation's retry locks the due holds' levels and
its own in one round before anything takes a number, and the batches of a bulk
transaction number their events once, after the last batch.
"""

from collections import defaultdict
from collections.abc import Iterable
from functools import reduce
from operator import or_

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from catalog.models import Product
from stores.models import Store

from ..models import StockLevel
from .arrays import pair_rows


def ensure_stock_levels(pairs: Iterable[tuple[Store, Product]]) -> None:
    """Create the zero levels that do not exist yet (version 0, no movement).

    A zero level means the same as no level, so creating one changes nothing a reader
    can see. Rows are inserted in key order, which keeps concurrent inserters of the
    same keys from deadlocking each other.
    """
    ensure_stock_levels_by_ids((store.pk, product.pk) for store, product in pairs)


def lock_stock_levels(
    pairs: Iterable[tuple[Store, Product]],
) -> dict[tuple[int, int], StockLevel]:
    """Lock exactly the levels of ``pairs`` and return them by (store id, product id).

    Pairs without a level are missing from the result. Rows are locked in primary-key
    order, whatever order the pairs come in.
    Precondition: called inside ``transaction.atomic``; the locks last until it ends.
    """
    return lock_stock_levels_by_ids((store.pk, product.pk) for store, product in pairs)


def lock_stock_levels_by_ids(
    keys: Iterable[tuple[int, int]],
) -> dict[tuple[int, int], StockLevel]:
    """``lock_stock_levels`` for (store id, product id) keys."""
    products_by_store: dict[int, set[int]] = defaultdict(set)
    for store_id, product_id in keys:
        products_by_store[store_id].add(product_id)
    if not products_by_store:
        return {}
    wanted = reduce(
        or_,
        (
            Q(store_id=store_id, product_id__in=product_ids)
            for store_id, product_ids in products_by_store.items()
        ),
    )
    rows = StockLevel.objects.filter(wanted).order_by("pk").select_for_update()
    return {(row.store_id, row.product_id): row for row in rows}


def ensure_stock_levels_by_ids(keys: Iterable[tuple[int, int]]) -> None:
    """``ensure_stock_levels`` for (store id, product id) keys: ONE INSERT ... SELECT
    however many keys (a bulk job may name 10,000 levels)."""
    keys = sorted(set(keys))
    if not keys:
        return
    table = connection.ops.quote_name(StockLevel._meta.db_table)
    pairs, params = pair_rows(keys)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table}
                   (store_id, product_id, on_hand, reserved, reorder_point, version, updated_at)
            SELECT pair.store_id, pair.product_id, 0, 0, 0, 0, %s
              FROM {pairs} AS pair
             WHERE true
             ORDER BY pair.store_id, pair.product_id
                ON CONFLICT (store_id, product_id) DO NOTHING
            """,
            [timezone.now(), *params],
        )


def stock_level_ids(keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """The ids of the existing levels of (store id, product id) ``keys``, in one query."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    table = connection.ops.quote_name(StockLevel._meta.db_table)
    pairs, params = pair_rows(keys)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT level.store_id, level.product_id, level.id
              FROM {pairs} AS pair
              JOIN {table} AS level
                ON level.store_id = pair.store_id AND level.product_id = pair.product_id
            """,
            params,
        )
        return {(store_id, product_id): level_id for store_id, product_id, level_id in cursor}
