"""The write side of the per-store stock event log (``events.models``): one StockEvent
per Movement, and one per change of a level's reorder point (``reorder_point_event``),
in the transaction of its change.

A store's events are numbered by its ``StoreEventSequence`` row, which a change locks
from the moment it takes its numbers until it commits: so numbers are handed out in
commit order, with no gap (a rolled-back change gives its numbers back). That row is
locked AFTER every stock level lock of the change, stores in id order (``locks``), and a
change's events of one store take consecutive numbers in movement id order (events of
no movement after them, in the order given).

The single-row statement (``sql._guarded_change_sql``) and the seeding (``seed``) number
their events in their own SQL; every other write path builds its events here
(``pending_event``) and writes them with ``write_events``, once its last level is locked.
"""

import functools
from collections import defaultdict

from django.db import connection

from events.models import StockEvent, StoreEventSequence, event_type

from ..models import StockLevel

EVENT_COLUMNS = (
    "store_id",
    "seq",
    "type",
    "product_id",
    "on_hand",
    "reserved",
    "available",
    "reorder_point",
    "version",
    "movement_id",
    "at",
)


def pending_event(level: StockLevel, *, movement_id: int, available_before: int, at) -> StockEvent:
    """The (unsaved, unnumbered) event of the change that left ``level`` as it is, judged
    against the level's reorder point at the change."""
    available = level.on_hand - level.reserved
    return _event(
        level,
        event_type(available_before, available, level.reorder_point),
        movement_id=movement_id,
        at=at,
    )


def reorder_point_event(level: StockLevel, *, reorder_point_before: int, at) -> StockEvent:
    """The (unsaved, unnumbered) event of moving ``level``'s reorder point from
    ``reorder_point_before`` to the one it has now: no unit moved, so it names no movement
    and keeps the level's version; it is ``stock.low`` when it makes an available level
    low (at or below the new point, above the old one), else ``stock.changed``."""
    available = level.on_hand - level.reserved
    return _event(
        level,
        event_type(available, available, level.reorder_point, reorder_point_before),
        movement_id=None,
        at=at,
    )


def _event(level: StockLevel, type_, *, movement_id: int | None, at) -> StockEvent:
    available = level.on_hand - level.reserved
    return StockEvent(
        store_id=level.store_id,
        product_id=level.product_id,
        type=type_,
        on_hand=level.on_hand,
        reserved=level.reserved,
        available=available,
        reorder_point=level.reorder_point,
        version=level.version,
        movement_id=movement_id,
        at=at,
    )


def write_events(events: list[StockEvent]) -> list[StockEvent]:
    """Number ``events`` (from ``pending_event`` or ``reorder_point_event``) and insert
    them; sets their ``seq`` and ``pk`` and returns them in (store, seq) order.

    ONE upsert takes the numbers of every store involved (rows in store id order, so two
    changes lock the sequence rows of their stores in the same order); on PostgreSQL the
    events' INSERT rides in the same statement.

    Precondition: inside the transaction of their change, which holds every stock level
    lock it will take.
    """
    if not events:
        return []
    by_store: dict[int, list[StockEvent]] = defaultdict(list)
    for event in sorted(events, key=_movement_order):
        by_store[event.store_id].append(event)
    if connection.vendor == "postgresql":
        _write_postgresql(by_store)
    else:
        _write_portable(by_store)
    return [event for store_id in sorted(by_store) for event in by_store[store_id]]


def _movement_order(event: StockEvent) -> tuple[bool, int]:
    """Events in movement id order, those of no movement last (``sorted`` keeps their
    order)."""
    return (event.movement_id is None, event.movement_id or 0)


def _write_postgresql(by_store: dict[int, list[StockEvent]]) -> None:
    store_ids = sorted(by_store)
    ordered = [event for store_id in store_ids for event in by_store[store_id]]
    params = {
        "store_ids": store_ids,
        "counts": [len(by_store[store_id]) for store_id in store_ids],
        # How far back from its store's new last_seq each event's number is.
        "back": [
            len(by_store[store_id]) - 1 - index
            for store_id in store_ids
            for index in range(len(by_store[store_id]))
        ],
        **{
            column: [getattr(event, column) for event in ordered]
            for column in EVENT_COLUMNS
            if column not in ("seq", "type")
        },
        "type": [str(event.type) for event in ordered],
    }
    with connection.cursor() as cursor:
        cursor.execute(_write_sql(), params)
        numbered = sorted(cursor.fetchall())  # (store id, seq, id): ``ordered``'s order
    for event, (_, seq, pk) in zip(ordered, numbered, strict=True):
        event.pk, event.seq = pk, seq


@functools.cache
def _write_sql() -> str:
    """Take the numbers and insert the events in one statement (PostgreSQL)."""
    events = connection.ops.quote_name(StockEvent._meta.db_table)
    taken = (
        "SELECT * FROM unnest(%(store_ids)s::bigint[], %(counts)s::bigint[]) "
        "AS taken (store_id, events) ORDER BY store_id"
    )
    return f"""
        WITH numbered AS (
            {next_numbers_sql(taken)}
            RETURNING store_id, last_seq
        )
        INSERT INTO {events} ({", ".join(EVENT_COLUMNS)})
        SELECT event.store_id, numbered.last_seq - event.back, event.type, event.product_id,
               event.on_hand, event.reserved, event.available, event.reorder_point,
               event.version, event.movement_id, event.at
          FROM unnest(%(store_id)s::bigint[], %(back)s::bigint[], %(type)s::text[],
                      %(product_id)s::bigint[], %(on_hand)s::bigint[], %(reserved)s::bigint[],
                      %(available)s::bigint[], %(reorder_point)s::bigint[],
                      %(version)s::bigint[], %(movement_id)s::bigint[],
                      %(at)s::timestamptz[]) WITH ORDINALITY
               AS event (store_id, back, type, product_id, on_hand, reserved, available,
                         reorder_point, version, movement_id, at, ordinal)
          JOIN numbered ON numbered.store_id = event.store_id
         ORDER BY event.ordinal
        RETURNING store_id, seq, id
    """


def next_numbers_sql(taken: str) -> str:
    """The upsert that takes numbers: ``taken`` is a SELECT of (store id, how many
    numbers) rows, in store id order; the store's sequence row grows by that many (or is
    created), and stays locked until the transaction ends. Add ``RETURNING`` to read each
    store's new ``last_seq``."""
    sequences = connection.ops.quote_name(StoreEventSequence._meta.db_table)
    return f"""
        INSERT INTO {sequences} AS sequence (store_id, last_seq)
        {taken}
            ON CONFLICT (store_id) DO UPDATE SET last_seq = sequence.last_seq + excluded.last_seq
    """


def _write_portable(by_store: dict[int, list[StockEvent]]) -> None:
    """SQLite: the upsert answers each store's new last_seq, then one INSERT of the events
    (its write lock is the whole database's, held since the transaction began)."""
    store_ids = sorted(by_store)
    rows = ", ".join(["(CAST(%s AS BIGINT), CAST(%s AS BIGINT))"] * len(store_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            next_numbers_sql(f"VALUES {rows}") + " RETURNING store_id, last_seq",
            [value for store_id in store_ids for value in (store_id, len(by_store[store_id]))],
        )
        last = dict(cursor.fetchall())
    for store_id, store_events in by_store.items():
        first = last[store_id] - len(store_events) + 1
        for offset, event in enumerate(store_events):
            event.seq = first + offset
    StockEvent.objects.bulk_create(
        [event for store_id in store_ids for event in by_store[store_id]]
    )
