"""Stocking many stores with many products at once (demo and load-test data)."""

from collections.abc import Iterable

from django.db import connection, transaction
from django.utils import timezone

from audit.services import audit_record
from catalog.models import Product
from events.models import StockEvent, StoreEventSequence, event_type_sql
from stores.models import Store

from ..exceptions import InvalidStockOperation
from ..metrics import counted
from ..models import Movement, MovementKind, StockLevel
from ..signals import stock_levels_seeded
from .arrays import id_rows
from .event_log import EVENT_COLUMNS, next_numbers_sql
from .rules import MAX_QUANTITY, check_reference, is_int, user_of

SEED_ON_HAND_SPREAD = 200


@counted("seed")
@transaction.atomic
def stock_seed_levels(
    *,
    stores: Iterable[Store],
    products: Iterable[Product],
    reorder_point: int = 0,
    reference: str = "",
    actor=None,
) -> int:
    """Stock every product in every store at once (demo and load-test data); returns how
    many levels it created.

    Set-based: two INSERT ... SELECT statements over the cross join of the ids, however
    many pairs there are. Each level gets ``on_hand = (store_id * 31 + product_id * 17)
    % 200`` (the same ids give the same stock), version 1, and exactly one ``import``
    movement recording that on_hand, so the ledger balances as after any other change.
    The whole seeding is ONE audit entry (``stock.seed``, counting stores, products and
    levels), not one per movement: its subject is the data set, and millions of entries
    would bury the audit log.

    Each movement gets its stock event, set-based too: ONE upsert takes every store's
    numbers (after the new levels, stores in id order) and ONE INSERT ... SELECT numbers
    the events of each store in movement id order (``row_number()``).

    Precondition: none of the pairs has a level yet (seed new stores or new products);
    otherwise InvalidStockOperation and nothing is written. No ``stock_changed`` nor
    ``stock_events_committed`` is sent
    (a signal carrying millions of levels would only fill the cache with rows nobody
    asked for); ``stock_levels_seeded`` is, and its receiver retires the cached levels,
    since a pair read before the seeding is cached as a zero level.
    """
    store_ids = sorted({store.pk for store in stores})
    product_ids = sorted({product.pk for product in products})
    if not store_ids or not product_ids:
        raise InvalidStockOperation("Seeding needs at least one store and one product.")
    if not is_int(reorder_point) or not 0 <= reorder_point <= MAX_QUANTITY:
        raise InvalidStockOperation("reorder_point must be a whole number from 0 to 1,000,000.")
    check_reference(reference)
    quote = connection.ops.quote_name
    level_table = quote(StockLevel._meta.db_table)
    movement_table = quote(Movement._meta.db_table)
    store_id_rows, store_id_param = id_rows(store_ids)
    product_id_rows, product_id_param = id_rows(product_ids)
    seeded = (
        f"store_id IN (SELECT id FROM {store_id_rows} AS s) "
        f"AND product_id IN (SELECT id FROM {product_id_rows} AS p)"
    )
    actor_user = user_of(actor)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {level_table} WHERE {seeded} LIMIT 1",
            [store_id_param, product_id_param],
        )
        if cursor.fetchone() is not None:
            raise InvalidStockOperation("Some of these stores already stock these products.")
        cursor.execute(
            f"""
            INSERT INTO {level_table}
                   (store_id, product_id, on_hand, reserved, reorder_point, version, updated_at)
            SELECT s.id, p.id, (s.id * 31 + p.id * 17) %% {SEED_ON_HAND_SPREAD}, 0, %s, 1, %s
              FROM {store_id_rows} AS s CROSS JOIN {product_id_rows} AS p
             ORDER BY s.id, p.id
            """,
            [reorder_point, now, store_id_param, product_id_param],
        )
        levels = cursor.rowcount
        cursor.execute(
            f"""
            INSERT INTO {movement_table}
                   (store_id, product_id, kind, delta_on_hand, delta_reserved,
                    on_hand_after, reserved_after, version_after,
                    reason, reference, note, actor_id, created_at)
            SELECT store_id, product_id, %s, on_hand, 0, on_hand, 0, 1,
                   '', %s, '', CAST(%s AS BIGINT), %s
              FROM {level_table}
             WHERE {seeded}
             ORDER BY store_id, product_id
            """,
            [
                str(MovementKind.IMPORT),
                reference,
                actor_user.pk if actor_user else None,
                now,
                store_id_param,
                product_id_param,
            ],
        )
        _write_seed_events(
            cursor, seeded, [store_id_param, product_id_param], store_id_rows, store_id_param,
            len(product_ids), reorder_point, now,
        )  # fmt: skip
    transaction.on_commit(
        lambda: stock_levels_seeded.send_robust(
            sender=StockLevel, store_ids=store_ids, product_ids=product_ids
        ),
        robust=True,
    )
    audit_record(
        action="stock.seed",
        object_type="stock.stocklevel",
        object_repr=f"{len(store_ids)} stores x {len(product_ids)} products",
        before=None,
        after={"stores": len(store_ids), "products": len(product_ids), "levels": levels},
        actor=actor,
    )
    return levels


def _write_seed_events(
    cursor, seeded, seeded_params, store_id_rows, store_id_param, per_store, reorder_point, now
) -> None:
    """The events of the seeding's movements (those of the ``seeded`` pairs: none of them
    had a level, so every movement of theirs is this seeding's): each store's sequence
    row grows by ``per_store`` numbers, and its events take the last ones."""
    quote = connection.ops.quote_name
    events = quote(StockEvent._meta.db_table)
    sequences = quote(StoreEventSequence._meta.db_table)
    movements = quote(Movement._meta.db_table)
    cursor.execute(
        next_numbers_sql(
            f"SELECT s.id, CAST(%s AS BIGINT) FROM {store_id_rows} AS s WHERE true ORDER BY s.id"
        ),
        [per_store, store_id_param],
    )
    type_ = event_type_sql("0", "moved.on_hand_after", "moved.reorder_point")
    cursor.execute(
        f"""
        INSERT INTO {events} ({", ".join(EVENT_COLUMNS)})
        SELECT moved.store_id, sequence.last_seq - moved.events + moved.position, {type_},
               moved.product_id, moved.on_hand_after, 0, moved.on_hand_after,
               moved.reorder_point, 1, moved.id, %s
          FROM (SELECT id, store_id, product_id, on_hand_after,
                       CAST(%s AS BIGINT) AS reorder_point,
                       row_number() OVER (PARTITION BY store_id ORDER BY id) AS position,
                       count(*) OVER (PARTITION BY store_id) AS events
                  FROM {movements}
                 WHERE {seeded}) AS moved
          JOIN {sequences} AS sequence ON sequence.store_id = moved.store_id
         ORDER BY moved.store_id, moved.id
        """,
        [now, reorder_point, *seeded_params],
    )
