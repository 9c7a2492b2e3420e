"""The guarded SQL: every statement that changes stock levels and writes their ledger.

Single-row changes are one guarded UPDATE whose WHERE clause carries the invariant
(``on_hand - reserved >= quantity``): zero rows updated means the change was refused, and
no value is ever read into Python and written back. On PostgreSQL the ledger and audit
outbox INSERTs, the store's event number and the event's INSERT ride in the same
statement, so the row lock is held for one round trip plus the commit. Multi-row changes
lock their rows in primary-key order first (``locks``), then change them all with one
guarded UPDATE and record their movements with one INSERT (``apply_locked``), whatever
the number of lines. Bulk jobs have their own
set-based statement (``apply_bulk_batch``), built from the same pieces. Every movement
gets its stock event (``event_log``) in the same transaction, numbered once the change
holds every level lock it takes.
"""

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.services import (
    MOVEMENT_SOURCE_COLUMNS,
    audit_movement,
    audit_records,
    movement_audit_records,
    movement_outbox_params,
    movement_outbox_sql,
    relay_after_commit,
)
from catalog.models import Product
from events.models import StockEvent, event_type_sql
from events.signals import stock_events_committed
from stores.models import Store

from ..exceptions import InsufficientStock, Shortage
from ..models import (
    Movement,
    MovementKind,
    Reservation,
    ReservationLine,
    ReservationStatus,
    StockLevel,
)
from ..signals import stock_changed
from .arrays import id_rows
from .event_log import next_numbers_sql, pending_event, write_events
from .locks import ensure_stock_levels
from .rules import user_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Change:
    store: Store
    product: Product
    kind: MovementKind
    delta_on_hand: int
    delta_reserved: int = 0
    reason: str = ""
    reference: str = ""
    note: str = ""
    actor: object = None

    @property
    def only_adds(self) -> bool:
        """A change no invariant can refuse: it can only fail for want of a level row."""
        return self.delta_on_hand >= 0 and self.delta_reserved == 0

    @property
    def available_drop(self) -> int:
        return self.delta_reserved - self.delta_on_hand


def apply_and_announce(change: Change, *, due_holds: bool = False) -> StockLevel:
    """A single-row operation: apply the change, send stock_changed after commit."""
    level = apply_change(change, due_holds=due_holds)
    announce(change.kind, [level])
    return level


def apply_change(change: Change, *, due_holds: bool = False) -> StockLevel:
    """Apply ``change`` with one guarded UPDATE and record its Movement.

    The guard keeps ``0 <= reserved <= on_hand`` after the change. A change that only adds
    units creates the missing level first; any other refused change raises
    InsufficientStock naming what is available now (one plain SELECT, which with
    ``due_holds`` also reads the lines of due holds on the level into the error's
    ``due_lines``, for ``retry_after_expiring_due_holds``).
    """
    now = timezone.now()
    level = _guarded_update(change, now)
    if level is None and change.only_adds:
        ensure_stock_levels([(change.store, change.product)])
        level = _guarded_update(change, now)
    if level is None:
        if due_holds:
            available, due_lines = _available_and_due_holds(change.store, change.product)
        else:
            available, due_lines = _available(change.store, change.product), None
        short = InsufficientStock(
            [Shortage(change.product.sku, requested=change.available_drop, available=available)]
        )
        short.due_lines = due_lines
        raise short
    return level


def _available(store: Store, product: Product) -> int:
    return (
        StockLevel.objects.filter(store=store, product=product)
        .values_list("available", flat=True)
        .first()
    ) or 0


def _available_and_due_holds(store: Store, product: Product) -> tuple[int, list]:
    """What is available of ``product`` in ``store`` now, and the lines of the due holds
    on that level (as ``_lines_of_due_holds``), in ONE plain SELECT: a sold-out sale with
    no due hold answers from its refused statement and this, taking no lock."""
    quote = connection.ops.quote_name
    level_table = quote(StockLevel._meta.db_table)
    hold_table = quote(Reservation._meta.db_table)
    line_table = quote(ReservationLine._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT on_hand - reserved, NULL, NULL
              FROM {level_table}
             WHERE store_id = %s AND product_id = %s
            UNION ALL
            SELECT NULL, line.reservation_id, line.product_id
              FROM {line_table} AS line
              JOIN {hold_table} AS hold ON hold.id = line.reservation_id
             WHERE hold.store_id = %s AND hold.status = %s AND hold.expires_at <= %s
               AND hold.id IN (SELECT reservation_id FROM {line_table} WHERE product_id = %s)
            """,
            [
                store.pk,
                product.pk,
                store.pk,
                str(ReservationStatus.ACTIVE),
                timezone.now(),
                product.pk,
            ],
        )
        rows = cursor.fetchall()
    available = next((row[0] for row in rows if row[0] is not None), 0)
    return available, [(row[1], row[2]) for row in rows if row[0] is None]


def apply_locked(
    changes: list[Change], locked: dict, *, also_audit: Iterable[dict] = ()
) -> list[StockLevel]:
    """Apply ``changes`` to their levels with ONE UPDATE (all rows, whatever their store),
    record their movements with ONE INSERT and their audit outbox entries, with the
    ``also_audit`` records (``audit_records``), with one more; returns the level after
    each change, in order.

    Several changes of one level become one row of the UPDATE and keep one movement each,
    in order, each with the values after it. The UPDATE's guard is the per-row
    invariant; a row it refuses (the caller's checks on the locked rows should have
    refused first) raises InsufficientStock, and the caller's transaction rolls back.

    Each level returned carries the StockEvent of its change (``event``), numbered: the
    stores' sequence rows are locked here, after the levels.

    Precondition: inside ``transaction.atomic`` with every level of ``changes`` locked;
    ``locked`` is what ``lock_stock_levels`` returned.
    """
    if not changes:
        return []
    now = timezone.now()
    steps: dict[int, list[int]] = {}  # level id -> indexes of its changes, in order
    for index, change in enumerate(changes):
        level = locked[(change.store.pk, change.product.pk)]
        steps.setdefault(level.pk, []).append(index)
    rows = [
        (
            level_id,
            sum(changes[index].delta_on_hand for index in indexes),
            sum(changes[index].delta_reserved for index in indexes),
            len(indexes),
        )
        for level_id, indexes in steps.items()
    ]
    updated = {}
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, _LEVELS_PER_UPDATE):
            cursor.execute(
                _levels_update_sql(len(chunk)), [value for row in chunk for value in row] + [now]
            )
            updated.update({row[0]: row[1:] for row in cursor.fetchall()})
    refused = [changes[steps[level_id][0]] for level_id in steps if level_id not in updated]
    if refused:
        raise InsufficientStock(
            [
                Shortage(
                    change.product.sku,
                    requested=change.available_drop,
                    available=locked[(change.store.pk, change.product.pk)].available,
                )
                for change in refused
            ]
        )
    after = [None] * len(changes)
    for level_id, indexes in steps.items():
        on_hand, reserved, reorder_point, version = updated[level_id]
        for index in reversed(indexes):  # walk back from the final values
            after[index] = (level_id, on_hand, reserved, reorder_point, version)
            change = changes[index]
            on_hand, reserved = on_hand - change.delta_on_hand, reserved - change.delta_reserved
            version -= 1
    movements = Movement.objects.bulk_create(
        [
            _movement(change, now, on_hand, reserved, version)
            for change, (_, on_hand, reserved, _, version) in zip(changes, after, strict=True)
        ]
    )
    audit_records([*movement_audit_records(movements), *also_audit], actor=changes[0].actor)
    levels = []
    for change, values, movement in zip(changes, after, movements, strict=True):
        level = _level(change, now, *values, movement.pk)
        level.event = pending_event(
            level,
            movement_id=movement.pk,
            available_before=level.available + change.available_drop,
            at=now,
        )
        levels.append(level)
    write_events([level.event for level in levels])
    return levels


def _movement(change: Change, now, on_hand: int, reserved: int, version: int) -> Movement:
    """The (unsaved) ledger row of ``change``, with the level's values after it."""
    return Movement(
        store=change.store,
        product=change.product,
        kind=change.kind,
        delta_on_hand=change.delta_on_hand,
        delta_reserved=change.delta_reserved,
        on_hand_after=on_hand,
        reserved_after=reserved,
        version_after=version,
        reason=change.reason,
        reference=change.reference,
        note=change.note,
        actor_id=getattr(user_of(change.actor), "pk", None),
        created_at=now,
    )


# Rows per UPDATE of ``apply_locked``: 4 parameters each stays far below SQLite's and
# PostgreSQL's parameter limits; a transfer or a checkout has a handful.
_LEVELS_PER_UPDATE = 1000


def _chunks(rows: list, size: int):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


@functools.cache
def _levels_update_sql(rows: int) -> str:
    """One guarded UPDATE of ``rows`` levels by id, each with its own deltas and its
    number of steps (the version grows by one per change); answers each updated row's
    new values. ``UPDATE ... FROM`` a VALUES list: PostgreSQL, and SQLite since 3.33."""
    table = connection.ops.quote_name(StockLevel._meta.db_table)
    row = "(CAST(%s AS BIGINT), CAST(%s AS BIGINT), CAST(%s AS BIGINT), CAST(%s AS BIGINT))"
    return f"""
        WITH v (id, delta_on_hand, delta_reserved, steps) AS (VALUES {", ".join([row] * rows)})
        UPDATE {table}
           SET on_hand = {table}.on_hand + v.delta_on_hand,
               reserved = {table}.reserved + v.delta_reserved,
               version = {table}.version + v.steps,
               updated_at = %s
          FROM v
         WHERE {table}.id = v.id
           AND {table}.on_hand + v.delta_on_hand >= {table}.reserved + v.delta_reserved
           AND {table}.reserved + v.delta_reserved >= 0
        RETURNING {table}.id, {table}.on_hand, {table}.reserved, {table}.reorder_point,
                  {table}.version
    """


def _guarded_update(change: Change, now) -> StockLevel | None:
    if connection.vendor == "postgresql":
        return _guarded_update_postgresql(change, now)
    return _guarded_update_portable(change, now)


@functools.cache
def _guarded_change_sql(audited: bool) -> str:
    """The guarded UPDATE, its ledger INSERT, (``audited``) its audit outbox INSERT, the
    store's next event number and the event's INSERT; answers the level's new values,
    the recorded movement's id and the event's id, number and type (no row if refused).

    The number is taken from the UPDATE's row (``FROM changed``): a refused change takes
    none and locks no sequence row, and an accepted one locks its store's sequence row
    only once it holds the level's lock."""
    audit = f", audited AS ({movement_outbox_sql('recorded')})" if audited else ""
    level_table = connection.ops.quote_name(StockLevel._meta.db_table)
    movement_table = connection.ops.quote_name(Movement._meta.db_table)
    event_table = connection.ops.quote_name(StockEvent._meta.db_table)
    moved_columns = ", ".join(MOVEMENT_SOURCE_COLUMNS)
    available_after = "changed.on_hand - changed.reserved"
    available_before = f"{available_after} - (%(delta_on_hand)s) + (%(delta_reserved)s)"
    return f"""
        WITH changed AS (
            UPDATE {level_table}
               SET on_hand = on_hand + %(delta_on_hand)s,
                   reserved = reserved + %(delta_reserved)s,
                   version = version + 1,
                   updated_at = %(now)s
             WHERE store_id = %(store_id)s AND product_id = %(product_id)s
               AND on_hand + %(delta_on_hand)s >= reserved + %(delta_reserved)s
               AND reserved + %(delta_reserved)s >= 0
         RETURNING id, on_hand, reserved, reorder_point, version
        ), recorded AS (
            INSERT INTO {movement_table}
                   (store_id, product_id, kind, delta_on_hand, delta_reserved,
                    on_hand_after, reserved_after, version_after,
                    reason, reference, note, actor_id, created_at)
            SELECT %(store_id)s, %(product_id)s, %(kind)s, %(delta_on_hand)s,
                   %(delta_reserved)s, on_hand, reserved, version,
                   %(reason)s, %(reference)s, %(note)s, %(actor_id)s::bigint, %(now)s
              FROM changed
         RETURNING {moved_columns}
        ){audit}, numbered AS (
            {next_numbers_sql("SELECT %(store_id)s, 1 FROM changed")}
         RETURNING last_seq
        ), evented AS (
            INSERT INTO {event_table}
                   (store_id, seq, type, product_id, on_hand, reserved, available,
                    reorder_point, version, movement_id, at)
            SELECT %(store_id)s, numbered.last_seq,
                   {event_type_sql(available_before, available_after, "changed.reorder_point")},
                   %(product_id)s, changed.on_hand, changed.reserved, {available_after},
                   changed.reorder_point, changed.version, recorded.id, %(now)s
              FROM changed, recorded, numbered
         RETURNING id, seq, type
        )
        SELECT changed.id, on_hand, reserved, reorder_point, version, recorded.id,
               evented.id, evented.seq, evented.type
          FROM changed, recorded, evented
    """


def guarded_change_statement(change: Change, now) -> tuple[str, dict]:
    """The one PostgreSQL statement of a single-row change, and its parameters: the
    guarded UPDATE, its ledger INSERT, (with ``AUDIT_ENABLED``) its audit outbox INSERT
    and its stock event. ``make bench`` runs the same statement under pgbench."""
    audited = settings.AUDIT_ENABLED
    params = _statement_params(change, now)
    if audited:
        params |= movement_outbox_params(actor=change.actor)
    return _guarded_change_sql(audited), params


def _guarded_update_postgresql(change: Change, now) -> StockLevel | None:
    """The UPDATE, the ledger INSERT and the event as one statement (one round trip
    under the lock)."""
    with connection.cursor() as cursor:
        cursor.execute(*guarded_change_statement(change, now))
        row = cursor.fetchone()
    if row is None:
        return None
    if settings.AUDIT_ENABLED:
        relay_after_commit()
    level_id, on_hand, reserved, reorder_point, version, movement_id, *event = row
    level = _level(change, now, level_id, on_hand, reserved, reorder_point, version, movement_id)
    event_id, seq, type_ = event
    level.event = StockEvent(
        id=event_id,
        store_id=change.store.pk,
        seq=seq,
        type=type_,
        product_id=change.product.pk,
        on_hand=on_hand,
        reserved=reserved,
        available=level.available,
        reorder_point=reorder_point,
        version=version,
        movement_id=movement_id,
        at=now,
    )
    return level


def _guarded_update_portable(change: Change, now) -> StockLevel | None:
    """The same change for databases without data-modifying CTEs (SQLite, whose
    IMMEDIATE transactions already hold the write lock, so the read-back is exact)."""
    levels = StockLevel.objects.filter(store=change.store, product=change.product)
    updated = levels.filter(
        Q(on_hand__gte=F("reserved") + change.delta_reserved - change.delta_on_hand),
        Q(reserved__gte=-change.delta_reserved),
    ).update(
        on_hand=F("on_hand") + change.delta_on_hand,
        reserved=F("reserved") + change.delta_reserved,
        version=F("version") + 1,
        updated_at=now,
    )
    if not updated:
        return None
    level_id, on_hand, reserved, reorder_point, version = levels.values_list(
        "id", "on_hand", "reserved", "reorder_point", "version"
    ).get()
    movement = _movement(change, now, on_hand, reserved, version)
    movement.save(force_insert=True)
    audit_movement(movement, actor=change.actor)
    level = _level(change, now, level_id, on_hand, reserved, reorder_point, version, movement.pk)
    level.event = pending_event(
        level,
        movement_id=movement.pk,
        available_before=level.available + change.available_drop,
        at=now,
    )
    write_events([level.event])
    return level


def _statement_params(change: Change, now) -> dict:
    actor = user_of(change.actor)
    return {
        "store_id": change.store.pk,
        "product_id": change.product.pk,
        "kind": str(change.kind),
        "delta_on_hand": change.delta_on_hand,
        "delta_reserved": change.delta_reserved,
        "reason": change.reason,
        "reference": change.reference,
        "note": change.note,
        "actor_id": actor.pk if actor else None,
        "now": now,
    }


def _level(
    change, now, level_id, on_hand, reserved, reorder_point, version, movement_id
) -> StockLevel:
    """The level after ``change``; ``movement_id`` is the Movement that recorded it
    (a sale's answer names its ledger row)."""
    level = StockLevel(
        id=level_id,
        store=change.store,
        product=change.product,
        on_hand=on_hand,
        reserved=reserved,
        available=on_hand - reserved,
        reorder_point=reorder_point,
        version=version,
        updated_at=now,
    )
    level.movement_id = movement_id
    return level


# --- Bulk batches ---------------------------------------------------------------------


@dataclass(frozen=True)
class BulkOutcome:
    """One bulk item's outcome: the level after it, or why it was not applied."""

    UNCHANGED = "unchanged"

    level: StockLevel | None = None
    code: str = ""
    detail: str = ""


def apply_bulk_batch(
    rows: list[tuple[int, int, int | None, int | None]],
    *,
    kind: MovementKind,
    absolute: bool,
    reason: str,
    reference: str,
    actor,
    record_unchanged: bool,
) -> list[BulkOutcome]:
    """Apply a batch of ``(level id, value, expected on_hand, expected version)`` rows,
    each level once: ``value`` is the new on_hand (``absolute``) or a delta. An item
    whose expected values differ fails ``version_mismatch``; one that would leave
    on_hand below reserved (or below 0) fails ``insufficient_stock``; a count equal to
    on_hand is ``unchanged`` unless ``record_unchanged``, whatever its expected values
    (it would change nothing). Every applied item writes one
    movement of ``kind`` and one audit outbox entry. Returns an outcome per row, in order;
    an applied item's level carries its StockEvent (``event``), NOT yet numbered nor
    written: the caller writes the events of all its batches with
    ``event_log.write_events`` after its last batch, since a store's sequence row is
    locked after every level lock of the transaction, and batches lock levels one after
    another.

    Precondition: inside ``transaction.atomic``; the levels exist. The rows are locked
    here, in id order (callers pass them sorted, so batches follow one another in the
    same order).
    """
    if not rows:
        return []
    now = timezone.now()
    if connection.vendor == "postgresql":
        found = _bulk_batch_postgresql(rows, kind, absolute, reason, reference, actor,
                                       record_unchanged, now)  # fmt: skip
    else:
        found = _bulk_batch_portable(rows, kind, absolute, reason, reference, actor,
                                     record_unchanged, now)  # fmt: skip
    return [_bulk_outcome(row, found.get(row[0]), absolute, record_unchanged, now) for row in rows]


def _bulk_outcome(row, found, absolute, record_unchanged, now) -> BulkOutcome:
    """Judge one row from ``found``: (on_hand, reserved, version before; the level's
    (on_hand, reserved, reorder_point, version, store id, product id) after and the
    movement's id, or None)."""
    level_id, value, expected_on_hand, expected_version = row
    before_on_hand, before_reserved, before_version, after = found
    if after is not None:
        on_hand, reserved, reorder_point, version, store_id, product_id, movement_id = after
        # Positional, in field order: a thousand levels a batch, and keyword
        # construction costs several times more.
        level = StockLevel(level_id, store_id, product_id, on_hand, reserved,
                           on_hand - reserved, reorder_point, version, now)  # fmt: skip
        level.movement_id = movement_id
        level.event = pending_event(
            level, movement_id=movement_id, available_before=before_on_hand - before_reserved,
            at=now,
        )  # fmt: skip
        return BulkOutcome(level=level)
    on_hand = value if absolute else before_on_hand + value
    if on_hand == before_on_hand and not record_unchanged:
        # Judged first: a count that matches changes nothing, however stale its version.
        return BulkOutcome(code=BulkOutcome.UNCHANGED)
    if expected_on_hand is not None and expected_on_hand != before_on_hand:
        return BulkOutcome(
            code="version_mismatch",
            detail=f"on_hand is {before_on_hand}, not the expected {expected_on_hand}.",
        )
    if expected_version is not None and expected_version != before_version:
        return BulkOutcome(
            code="version_mismatch",
            detail=f"The level is at version {before_version}, not {expected_version}: "
            "it changed since it was read.",
        )
    return BulkOutcome(
        code="insufficient_stock",
        detail=f"on_hand would be {on_hand}, below the {before_reserved} reserved "
        f"(available {before_on_hand - before_reserved}).",
    )


@functools.cache
def _bulk_batch_sql(absolute: bool, audited: bool, record_unchanged: bool) -> str:
    """ONE statement for a batch: lock the levels in id order, compute each new on_hand,
    apply the compare-and-set and the invariant in its WHERE clause, update the levels
    that pass, and write their movements and audit outbox entries (INSERT ... SELECT).
    Answers every locked level's values before, and after when it changed."""
    quote = connection.ops.quote_name
    levels, movements = quote(StockLevel._meta.db_table), quote(Movement._meta.db_table)
    new_on_hand = "item.value" if absolute else "locked.on_hand + item.value"
    unchanged = "" if record_unchanged else "AND planned.on_hand_after <> planned.on_hand"
    audit = f", audited AS ({movement_outbox_sql('recorded')})" if audited else ""
    return f"""
        WITH item AS (
            SELECT * FROM unnest(%(level_ids)s::bigint[], %(values)s::bigint[],
                                 %(expected_on_hand)s::bigint[], %(expected_version)s::bigint[])
                       AS item (level_id, value, expected_on_hand, expected_version)
        ), locked AS MATERIALIZED (
            SELECT id, on_hand, reserved, version
              FROM {levels}
             WHERE id IN (SELECT level_id FROM item)
             ORDER BY id
               FOR UPDATE
        ), planned AS MATERIALIZED (
            SELECT locked.id, locked.on_hand, locked.reserved, locked.version,
                   {new_on_hand} AS on_hand_after
              FROM locked JOIN item ON item.level_id = locked.id
             WHERE (item.expected_on_hand IS NULL OR item.expected_on_hand = locked.on_hand)
               AND (item.expected_version IS NULL OR item.expected_version = locked.version)
        ), changed AS (
            UPDATE {levels} AS level
               SET on_hand = planned.on_hand_after,
                   version = level.version + 1,
                   updated_at = %(now)s
              FROM planned
             WHERE level.id = planned.id
               AND planned.on_hand_after >= level.reserved
               {unchanged}
         RETURNING level.id, level.store_id, level.product_id, level.on_hand, level.reserved,
                   level.reorder_point, level.version, planned.on_hand AS on_hand_before
        ), recorded AS (
            INSERT INTO {movements}
                   (store_id, product_id, kind, delta_on_hand, delta_reserved,
                    on_hand_after, reserved_after, version_after,
                    reason, reference, note, actor_id, created_at)
            SELECT store_id, product_id, %(kind)s, on_hand - on_hand_before, 0,
                   on_hand, reserved, version,
                   %(reason)s, %(reference)s, '', %(actor_id)s::bigint, %(now)s
              FROM changed
             ORDER BY id
         RETURNING {", ".join(MOVEMENT_SOURCE_COLUMNS)}
        ){audit}
        SELECT locked.id, locked.on_hand, locked.reserved, locked.version,
               changed.on_hand, changed.reserved, changed.reorder_point, changed.version,
               changed.store_id, changed.product_id, recorded.id
          FROM locked
          LEFT JOIN changed ON changed.id = locked.id
          LEFT JOIN recorded
            ON recorded.store_id = changed.store_id AND recorded.product_id = changed.product_id
    """


def _bulk_batch_postgresql(rows, kind, absolute, reason, reference, actor, record_unchanged, now):
    audited = settings.AUDIT_ENABLED
    user = user_of(actor)
    params = {
        "level_ids": [row[0] for row in rows],
        "values": [row[1] for row in rows],
        "expected_on_hand": [row[2] for row in rows],
        "expected_version": [row[3] for row in rows],
        "kind": str(kind),
        "reason": reason,
        "reference": reference,
        "actor_id": user.pk if user else None,
        "now": now,
    }
    if audited:
        params |= movement_outbox_params(actor=actor)
    with connection.cursor() as cursor:
        cursor.execute(_bulk_batch_sql(absolute, audited, record_unchanged), params)
        found = {
            row[0]: (row[1], row[2], row[3], None if row[4] is None else row[4:])
            for row in cursor.fetchall()
        }
    if audited and any(value[3] is not None for value in found.values()):
        relay_after_commit()
    return found


def _bulk_batch_portable(rows, kind, absolute, reason, reference, actor, record_unchanged, now):
    """The same batch for SQLite, whose IMMEDIATE transaction already holds the write
    lock: one SELECT of the levels, one UPDATE ... FROM of those that pass (still
    guarded by the values read), one INSERT of their movements and one of their audit
    entries."""
    quote = connection.ops.quote_name
    levels = quote(StockLevel._meta.db_table)
    ids, param = id_rows([row[0] for row in rows])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, on_hand, reserved, version FROM {levels} WHERE id IN "
            f"(SELECT id FROM {ids} AS wanted) ORDER BY id",
            [param],
        )
        before = {row[0]: row[1:] for row in cursor.fetchall()}
    planned = []
    for level_id, value, expected_on_hand, expected_version in rows:
        on_hand, reserved, version = before[level_id]
        after = value if absolute else on_hand + value
        if (
            (expected_on_hand is None or expected_on_hand == on_hand)
            and (expected_version is None or expected_version == version)
            and after >= reserved
            and (record_unchanged or after != on_hand)
        ):
            planned.append((level_id, on_hand, after))
    changed = {}
    with connection.cursor() as cursor:
        for chunk in _chunks(planned, _LEVELS_PER_UPDATE // 2):
            cursor.execute(
                f"""
                WITH v (id, on_hand_before, on_hand_after) AS (VALUES {
                    ", ".join(
                        ["(CAST(%s AS BIGINT), CAST(%s AS BIGINT), CAST(%s AS BIGINT))"]
                        * len(chunk)
                    )
                })
                UPDATE {levels}
                   SET on_hand = v.on_hand_after, version = {levels}.version + 1,
                       updated_at = %s
                  FROM v
                 WHERE {levels}.id = v.id AND {levels}.on_hand = v.on_hand_before
                   AND v.on_hand_after >= {levels}.reserved
                RETURNING {levels}.id, {levels}.on_hand, {levels}.reserved,
                          {levels}.reorder_point, {levels}.version, {levels}.store_id,
                          {levels}.product_id
                """,
                [value for row in chunk for value in row] + [now],
            )
            changed.update({row[0]: row[1:] for row in cursor.fetchall()})
    if len(changed) != len(planned):
        raise RuntimeError("Stock levels changed under SQLite's write lock.")
    actor_id = getattr(user_of(actor), "pk", None)
    movements = Movement.objects.bulk_create(
        [
            Movement(
                store_id=after[4],
                product_id=after[5],
                kind=kind,
                delta_on_hand=after[0] - before[level_id][0],
                delta_reserved=0,
                on_hand_after=after[0],
                reserved_after=after[1],
                version_after=after[3],
                reason=reason,
                reference=reference,
                actor_id=actor_id,
                created_at=now,
            )  # fmt: skip
            for level_id, after in sorted(changed.items())
        ]
    )
    if movements:
        audit_records(movement_audit_records(_with_subjects(movements)), actor=actor)
    moved = {(movement.store_id, movement.product_id): movement.pk for movement in movements}
    return {
        level_id: (
            *before[level_id],
            None
            if level_id not in changed
            else (*changed[level_id], moved[changed[level_id][4:6]]),
        )
        for level_id in before
    }


def _with_subjects(movements: list[Movement]) -> list[Movement]:
    """Attach the stores and products an audit record names (one query each)."""
    stores = Store.objects.only("id", "code").in_bulk({m.store_id for m in movements})
    products = Product.objects.only("id", "sku").in_bulk({m.product_id for m in movements})
    for movement in movements:
        movement.store, movement.product = stores[movement.store_id], products[movement.product_id]
    return movements


# --- After commit -------------------------------------------------------------------


def announce(kind: MovementKind | None, levels: list[StockLevel], *, reservations=()) -> None:
    """Send ``stock_changed``, then ``stock_events_committed`` with the numbered events the
    levels carry (``event``), once the transaction has committed (``reservations``: the
    ones a reserve started, or a commit, release or expiry ended). One callback sends
    both.

    A failing receiver is logged, never raised: the change is committed and the caller
    must hear that it succeeded.
    """
    events = []
    for level in levels:
        event = getattr(level, "event", None)
        if event is None:
            continue
        for subject in ("store", "product"):  # what receivers name them by, without a query
            if getattr(StockLevel, subject).is_cached(level):
                setattr(event, subject, getattr(level, subject))
        events.append(event)

    def send():
        for receiver, result in stock_changed.send_robust(
            sender=StockLevel, kind=kind, levels=levels, reservations=reservations
        ):
            if isinstance(result, Exception):
                logger.error("stock_changed receiver %r failed", receiver, exc_info=result)
        if not events:
            return
        in_order = sorted(events, key=lambda event: (event.store_id, event.seq))
        for receiver, result in stock_events_committed.send_robust(
            sender=StockEvent, events=in_order
        ):
            if isinstance(result, Exception):
                logger.error("stock_events_committed receiver %r failed", receiver, exc_info=result)

    transaction.on_commit(send, robust=True)
