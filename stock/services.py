"""Every change to stock goes through this module.

Each service is one transaction that changes one or more stock levels and writes exactly
one Movement per change. After commit it sends ``stock_changed``.

Single-row changes are one guarded UPDATE whose WHERE clause carries the invariant
(``on_hand - reserved >= quantity``): zero rows updated means the change was refused, and
no value is ever read into Python and written back. On PostgreSQL the ledger and audit
outbox INSERTs ride in the same statement, so the row lock is held for one round trip
plus the commit; a purchase made outside any ``atomic`` block runs that statement in
autocommit, as its own transaction (no BEGIN or COMMIT round trip under the lock).
Multi-row changes lock their rows in primary-key order first (``stock.locks``), then
change them all with one guarded UPDATE and record their movements with one INSERT
(``_apply_locked``), whatever the number of lines.
"""

import contextlib
import functools
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.services import (
    audit_movement,
    audit_record,
    audit_records,
    movement_audit_records,
    movement_outbox_params,
    movement_outbox_sql,
    relay_after_commit,
)
from catalog.models import Product
from stores.models import Store

from .exceptions import (
    InsufficientStock,
    InvalidStockOperation,
    ProductInactive,
    ReservationNotActive,
    Shortage,
    StoreInactive,
    VersionMismatch,
)
from .locks import ensure_stock_levels, lock_stock_levels, lock_stock_levels_by_ids
from .metrics import counted
from .models import (
    AdjustmentReason,
    Movement,
    MovementKind,
    Reservation,
    ReservationLine,
    ReservationStatus,
    StockLevel,
)
from .signals import stock_changed, stock_levels_seeded

logger = logging.getLogger(__name__)

MAX_QUANTITY = 1_000_000
MAX_REFERENCE_LENGTH = 255
MAX_RESERVATION_TTL_SECONDS = 24 * 60 * 60
RESERVATION = "stock.reservation"


@dataclass(frozen=True)
class StockLine:
    product: Product
    quantity: int


@dataclass(frozen=True)
class Transfer:
    reference: str
    lines: list[StockLine]
    source_levels: list[StockLevel]
    destination_levels: list[StockLevel]


# --- Operations ---------------------------------------------------------------------


@counted("receive")
@transaction.atomic
def stock_receive(
    *,
    store: Store,
    product: Product,
    quantity: int,
    reference: str = "",
    note: str = "",
    actor=None,
) -> StockLevel:
    """Add delivered units to on_hand."""
    _check_quantity(quantity)
    _check_reference(reference)
    refuse_inactive(store, [product])
    return _apply_and_announce(
        _Change(
            store=store,
            product=product,
            kind=MovementKind.RECEIVE,
            delta_on_hand=quantity,
            reference=reference,
            note=note,
            actor=actor,
        )
    )


@counted("adjust")
@transaction.atomic
def stock_adjust(
    *, store: Store, product: Product, delta: int, reason: str, note: str = "", actor=None
) -> StockLevel:
    """Correct on_hand by ``delta`` (damaged, lost, found, ...); it may not take away
    units that are not available, and its sign must fit its reason
    (``adjustment_sign_problem``): the API, the admin and the commands all come here."""
    if not _is_int(delta) or delta == 0 or abs(delta) > MAX_QUANTITY:
        raise InvalidStockOperation(
            "delta must be a non-zero whole number from -1,000,000 to 1,000,000."
        )
    _check_reason(reason, required=True)
    problem = adjustment_sign_problem(delta, reason)
    if problem:
        raise InvalidStockOperation(problem)
    refuse_inactive(store, [product])
    return _apply_and_announce(
        _Change(
            store=store,
            product=product,
            kind=MovementKind.ADJUST,
            delta_on_hand=delta,
            reason=reason,
            note=note,
            actor=actor,
        )
    )


# Which way an adjustment of each reason moves stock: goods damaged or lost leave the
# shelf; goods found, returned or received come onto it; a correction goes either way.
ADJUSTMENT_DIRECTION = {
    AdjustmentReason.DAMAGED: -1,
    AdjustmentReason.LOST: -1,
    AdjustmentReason.FOUND: 1,
    AdjustmentReason.RETURNED: 1,
    AdjustmentReason.RECEIVED: 1,
    AdjustmentReason.CORRECTION: 0,
}


def adjustment_sign_problem(delta: int, reason: str) -> str | None:
    """Why an adjustment of ``delta`` does not fit ``reason``, or None when it does.

    ``stock_adjust`` refuses such an adjustment; forms and serializers may call this too,
    to show the sentence next to the field, but the rule is this one.
    """
    direction = ADJUSTMENT_DIRECTION.get(reason, 0)
    if direction < 0 and delta > 0:
        return f"A {reason} adjustment lowers stock: delta must be negative."
    if direction > 0 and delta < 0:
        return f"A {reason} adjustment raises stock: delta must be positive."
    return None


@counted("set")
@transaction.atomic
def stock_set_count(
    *,
    store: Store,
    product: Product,
    on_hand: int,
    expected_version: int | None = None,
    reason: str = "",
    note: str = "",
    actor=None,
) -> StockLevel:
    """Record a physical count: on_hand becomes ``on_hand``.

    With ``expected_version`` it is a compare-and-set that raises VersionMismatch when the
    level has changed since the caller read it. The row is locked first because the
    ledger must record the exact difference the count made; a count equal to the current
    value still writes a movement, since the count itself is worth keeping.
    """
    if not _is_int(on_hand) or not 0 <= on_hand <= MAX_QUANTITY:
        raise InvalidStockOperation("on_hand must be a whole number from 0 to 1,000,000.")
    if expected_version is not None and (not _is_int(expected_version) or expected_version < 0):
        raise InvalidStockOperation("The expected version must be a whole number >= 0.")
    _check_reason(reason, required=False)
    refuse_inactive(store, [product])
    ensure_stock_levels([(store, product)])
    level = lock_stock_levels([(store, product)])[(store.pk, product.pk)]
    if expected_version is not None and level.version != expected_version:
        raise VersionMismatch(expected=expected_version, current=level.version)
    if on_hand < level.reserved:
        raise InsufficientStock(
            [Shortage(product.sku, requested=level.on_hand - on_hand, available=level.available)]
        )
    return _apply_and_announce(
        _Change(
            store=store,
            product=product,
            kind=MovementKind.SET,
            delta_on_hand=on_hand - level.on_hand,
            reason=reason,
            note=note,
            actor=actor,
        )
    )


@counted("purchase")
def stock_purchase(
    *, store: Store, product: Product, quantity: int, reference: str = "", actor=None
) -> StockLevel:
    """Sell ``quantity`` available units, or raise InsufficientStock and change nothing.

    On PostgreSQL, called outside any ``atomic`` block (the API), the sale is ONE
    statement in autocommit (the guarded UPDATE with its ledger and audit outbox INSERTs):
    the statement is its own transaction, so the hot row is locked for that statement and
    its commit, and a refusal leaves no lock behind. Inside a caller's ``atomic`` block
    (admin, commands) it joins that transaction. When stock is short, one plain SELECT
    reads what the refusal names and whether holds on this level are due; only if some
    are, they are expired and the sale tried once more
    (``_retry_after_expiring_due_holds`` owns the transactions).
    """
    _check_quantity(quantity)
    _check_reference(reference)
    refuse_inactive(store, [product])
    change = _Change(
        store=store,
        product=product,
        kind=MovementKind.SALE,
        delta_on_hand=-quantity,
        reference=reference,
        actor=actor,
    )
    return _retry_after_expiring_due_holds(
        lambda: _apply_and_announce(change, due_holds=True),
        store,
        [product],
        via="purchase",
        actor=actor,
        one_statement=True,
    )


@counted("transfer")
@transaction.atomic
def stock_transfer(
    *,
    from_store: Store,
    to_store: Store,
    lines: Iterable[StockLine],
    note: str = "",
    actor=None,
) -> Transfer:
    """Move available units of several products between two stores: all lines or none.

    Lines naming the same product are merged. The shortages of every line are reported
    together, so a client can fix the whole request at once.
    """
    if from_store.pk == to_store.pk:
        raise InvalidStockOperation("A transfer needs two different stores.")
    lines = merge_lines(lines)
    for store in (from_store, to_store):
        refuse_inactive(store, [line.product for line in lines])
    reference = f"transfer:{uuid.uuid4().hex}"
    ensure_stock_levels((to_store, line.product) for line in lines)
    locked = lock_stock_levels(
        (store, line.product) for store in (from_store, to_store) for line in lines
    )
    _refuse_shortages(from_store, lines, locked)
    changes = [
        _Change(
            store=store,
            product=line.product,
            kind=kind,
            delta_on_hand=sign * line.quantity,
            reference=reference,
            note=note,
            actor=actor,
        )
        for store, kind, sign in (
            (from_store, MovementKind.TRANSFER_OUT, -1),
            (to_store, MovementKind.TRANSFER_IN, 1),
        )
        for line in lines
    ]
    levels = _apply_locked(changes, locked)
    source_levels, destination_levels = levels[: len(lines)], levels[len(lines) :]
    _announce(MovementKind.TRANSFER_OUT, levels)
    return Transfer(reference, lines, source_levels, destination_levels)


@counted("reorder_point")
@transaction.atomic
def stock_set_reorder_point(
    *, store: Store, product: Product, reorder_point: int, actor=None
) -> StockLevel:
    """Set the level at or below which the product counts as low stock in ``store``.

    Not a stock movement: ``version`` and the ledger stay as they are. Receivers of
    ``stock_changed`` still hear of it (``kind`` None), since the level's data changed.
    """
    [level] = _set_reorder_points([(store, product)], reorder_point, actor)
    return level


@counted("reorder_point")
@transaction.atomic
def stock_set_reorder_points(
    *, pairs: Iterable[tuple[Store, Product]], reorder_point: int, actor=None
) -> list[StockLevel]:
    """``stock_set_reorder_point`` for many levels at once, all or none; returns them in
    primary-key order. Their rows are locked in one ordered round, as every multi-row
    change does; each level is audited on its own."""
    return _set_reorder_points(list(pairs), reorder_point, actor)


def _set_reorder_points(pairs, reorder_point, actor) -> list[StockLevel]:
    """Precondition: inside ``transaction.atomic``."""
    if not _is_int(reorder_point) or not 0 <= reorder_point <= MAX_QUANTITY:
        raise InvalidStockOperation("reorder_point must be a whole number from 0 to 1,000,000.")
    ensure_stock_levels(pairs)
    locked = lock_stock_levels(pairs)
    stores = {store.pk: store for store, _ in pairs}
    products = {product.pk: product for _, product in pairs}
    levels = sorted(locked.values(), key=lambda level: level.pk)
    StockLevel.objects.filter(pk__in=[level.pk for level in levels]).update(
        reorder_point=reorder_point
    )
    for level in levels:
        level.store, level.product = stores[level.store_id], products[level.product_id]
        audit_record(
            action="stock.reorder_point",
            object_type="stock.stocklevel",
            object_id=level.pk,
            object_repr=f"{level.product.sku} @ {level.store.code}",
            store=level.store,
            before={"reorder_point": level.reorder_point},
            after={"reorder_point": reorder_point},
            actor=actor,
        )
        level.reorder_point = reorder_point
    _announce(None, levels)
    return levels


def _refuse_shortages(store: Store, lines: list[StockLine], locked: dict) -> None:
    """Raise InsufficientStock naming every line ``store`` cannot cover from ``locked``."""
    shortages = []
    for line in lines:
        level = locked.get((store.pk, line.product.pk))
        available = level.available if level else 0
        if available < line.quantity:
            shortages.append(Shortage(line.product.sku, line.quantity, available))
    if shortages:
        raise InsufficientStock(shortages)


# --- Reservations -------------------------------------------------------------------


@counted("reserve")
def reservation_create(
    *,
    store: Store,
    lines: Iterable[StockLine],
    ttl_seconds: int | None = None,
    reference: str = "",
    actor=None,
) -> Reservation:
    """Hold units of several products for a checkout: all lines or none.

    Lines naming the same product are merged. When stock is short, due holds on those
    levels are expired first and the reservation tried once more, so an expired hold
    never blocks a buyer.
    """
    lines = merge_lines(lines)
    ttl_seconds = settings.RESERVATION_DEFAULT_TTL_SECONDS if ttl_seconds is None else ttl_seconds
    if not _is_int(ttl_seconds) or not 1 <= ttl_seconds <= MAX_RESERVATION_TTL_SECONDS:
        raise InvalidStockOperation("ttl_seconds must be a whole number from 1 to 86400.")
    _check_reference(reference)
    refuse_inactive(store, [line.product for line in lines])

    def reserve() -> Reservation:
        locked = lock_stock_levels((store, line.product) for line in lines)
        _refuse_shortages(store, lines, locked)
        now = timezone.now()
        reservation = Reservation.objects.create(
            store=store,
            reference=reference,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
            created_by=_user(actor),
        )
        ReservationLine.objects.bulk_create(
            ReservationLine(reservation=reservation, product=line.product, quantity=line.quantity)
            for line in lines
        )
        changes = [
            _Change(
                store=store,
                product=line.product,
                kind=MovementKind.RESERVE,
                delta_on_hand=0,
                delta_reserved=line.quantity,
                reference=_reservation_reference(reservation),
                actor=actor,
            )
            for line in lines
        ]
        created = {
            "action": "reservation.create",
            "object_type": RESERVATION,
            "object_id": reservation.pk,
            "object_repr": _reservation_reference(reservation),
            "store": store,
            "before": None,
            "after": {
                "status": str(reservation.status),
                "expires_at": reservation.expires_at.isoformat(),
                "reference": reference,
                "lines": [{"sku": line.product.sku, "quantity": line.quantity} for line in lines],
            },
        }
        levels = _apply_locked(changes, locked, also_audit=[created])
        _announce(MovementKind.RESERVE, levels)
        return reservation

    return _retry_after_expiring_due_holds(
        reserve, store, [line.product for line in lines], via="reservation", actor=actor
    )


@counted("commit")
def reservation_commit(*, reservation: Reservation, actor=None) -> Reservation:
    """Payment done: the held units leave on_hand and reserved; status ``committed``.

    Committing a committed reservation again returns it unchanged. A reservation past
    its expiry is expired here (and stays so) before ReservationNotActive is raised,
    which is why this service commits its own transaction before raising.
    """
    return _finish(
        reservation,
        status=ReservationStatus.COMMITTED,
        kind=MovementKind.COMMIT,
        actor=actor,
        repeat_returns=True,
    )


@counted("release")
def reservation_release(*, reservation: Reservation, actor=None) -> Reservation:
    """Checkout cancelled: the held units are available again; status ``released``."""
    return _finish(
        reservation,
        status=ReservationStatus.RELEASED,
        kind=MovementKind.RELEASE,
        actor=actor,
        repeat_returns=False,
    )


def reservations_expire_due(*, via: str, actor=None, limit: int | None = None) -> int:
    """Expire one batch of active reservations past ``expires_at``; returns how many.

    Reservations another transaction has locked (being committed or released) are
    skipped; the next sweep sees them if they are still due.
    """
    with transaction.atomic():
        batch = list(
            Reservation.objects.filter(
                status=ReservationStatus.ACTIVE, expires_at__lte=timezone.now()
            )
            .select_related("store")
            .order_by("pk")
            .select_for_update(skip_locked=True, of=("self",))[
                : limit or settings.RESERVATION_EXPIRY_BATCH_SIZE
            ]
        )
        _close(batch, ReservationStatus.EXPIRED, MovementKind.EXPIRE, via=via, actor=actor)
        return len(batch)


def reservations_expire_all_due(*, via: str) -> int:
    """Expire every due reservation, batch after batch (one transaction each)."""
    total = 0
    while expired := reservations_expire_due(via=via):
        total += expired
    return total


def _finish(reservation, *, status, kind, actor, repeat_returns) -> Reservation:
    with transaction.atomic():
        locked = (
            Reservation.objects.select_related("store")
            .select_for_update(of=("self",))
            .get(pk=reservation.pk)
        )
        if locked.status == status and repeat_returns:
            return locked
        if locked.status == ReservationStatus.ACTIVE:
            if locked.expires_at > timezone.now():
                _close([locked], status, kind, via=str(kind), actor=actor)
                return locked
            _close(
                [locked],
                ReservationStatus.EXPIRED,
                MovementKind.EXPIRE,
                via=f"{kind} after expiry",
                actor=actor,
            )
    raise ReservationNotActive(locked.status)


def _close(reservations: list[Reservation], status, kind: MovementKind, *, via: str, actor):
    """End active ``reservations`` (locked by the caller): give back their reserved units
    (and, for a commit, take them from on_hand), one movement per line. A commit of a
    deactivated store or product is refused (``refuse_inactive``) before anything changes.

    Precondition: inside ``transaction.atomic`` with the reservations locked; their
    stock levels are locked here, in primary-key order.
    """
    if not reservations:
        return
    lines = list(
        ReservationLine.objects.filter(reservation__in=reservations).select_related("product")
    )
    by_id = {reservation.pk: reservation for reservation in reservations}
    if kind == MovementKind.COMMIT:  # a sale; a release or an expiry only gives units back
        for line in lines:
            refuse_inactive(by_id[line.reservation_id].store, [line.product])
    locked = lock_stock_levels((by_id[line.reservation_id].store, line.product) for line in lines)
    changes = [
        _Change(
            store=by_id[line.reservation_id].store,
            product=line.product,
            kind=kind,
            delta_on_hand=-line.quantity if kind == MovementKind.COMMIT else 0,
            delta_reserved=-line.quantity,
            reason=via,
            reference=_reservation_reference(by_id[line.reservation_id]),
            actor=actor,
        )
        for line in lines
    ]
    closed = [
        {
            "action": f"reservation.{kind}",
            "object_type": RESERVATION,
            "object_id": reservation.pk,
            "object_repr": _reservation_reference(reservation),
            "store": reservation.store,
            "before": {"status": str(reservation.status)},
            "after": {"status": str(status), "closed_via": via},
        }
        for reservation in reservations
    ]
    levels = _apply_locked(changes, locked, also_audit=closed)
    now, closed_by = timezone.now(), _user(actor)
    Reservation.objects.filter(pk__in=by_id).update(
        status=status, closed_at=now, closed_by=closed_by, closed_via=via
    )
    for reservation in reservations:
        reservation.status, reservation.closed_at, reservation.closed_via = status, now, via
        reservation.closed_by = closed_by
    _announce(kind, levels)


def _retry_after_expiring_due_holds(
    attempt, store, products, *, via: str, actor, one_statement: bool = False
):
    """Run ``attempt`` in a transaction; if stock is short and holds on ``products`` are
    due, expire them and run it once more, in a second transaction.

    A refused change may still hold a row lock: an UPDATE or SELECT FOR UPDATE that
    waited for a concurrent writer locks the row's new version before it re-checks its
    WHERE clause, and keeps the lock when the check fails. So each attempt runs in its own
    transaction (a savepoint inside a caller's transaction), whose end releases whatever
    it locked, and the expiry takes its locks together with the retry's in one ordered
    round (``_expire_due_holds_before_retry``).

    ``one_statement``: the attempt is a single guarded statement. On PostgreSQL, outside
    any ``atomic`` block, it then runs in autocommit: the statement is its own transaction
    (no BEGIN or COMMIT round trip), and a refused statement's lock ends with it. A refusal
    raised by ``_apply(..., due_holds=True)`` already carries the due lines, read by the
    same SELECT as the available count.
    """
    try:
        with _own_transaction(one_statement):
            return attempt()
    except InsufficientStock as short:
        due_lines = getattr(short, "due_lines", None)
        if due_lines is None:
            due_lines = _lines_of_due_holds(store, products)
        if not due_lines:
            raise
    with transaction.atomic():
        # Tried again even if another transaction expired these holds meanwhile: their
        # units are free either way.
        _expire_due_holds_before_retry(
            store, products, due_lines, via=f"{via} found stock short", actor=actor
        )
        return attempt()


def _own_transaction(one_statement: bool):
    """The transaction an attempt runs in: none of its own (autocommit) for one statement
    on PostgreSQL outside any ``atomic`` block, else an ``atomic`` block. SQLite keeps its
    IMMEDIATE transaction: its portable change is several statements."""
    if (
        one_statement
        and connection.vendor == "postgresql"
        and connection.get_autocommit()
        and not connection.in_atomic_block
    ):
        return contextlib.nullcontext()
    return transaction.atomic()


def _lines_of_due_holds(store: Store, products) -> list[tuple[int, int]]:
    """(reservation id, product id) of every line of the active holds past their expiry
    that hold any of ``products`` in ``store``. A plain SELECT: it locks nothing, so a
    short reservation with no due hold (the usual case) costs one query here."""
    due = Reservation.objects.filter(
        store=store, status=ReservationStatus.ACTIVE, expires_at__lte=timezone.now()
    ).filter(pk__in=ReservationLine.objects.filter(product__in=products).values("reservation"))
    return list(
        ReservationLine.objects.filter(reservation__in=due).values_list(
            "reservation_id", "product_id"
        )
    )


def _expire_due_holds_before_retry(store: Store, products, due_lines, *, via: str, actor):
    """Expire the holds of ``due_lines`` that are still active and due.

    Precondition: inside the retry's ``atomic`` block, holding no stock level lock. The
    retry goes on to lock its own levels, so they are locked here together with the
    holds' levels, in ONE primary-key-ordered round: expiring first and letting the retry
    lock its own levels afterwards would be two rounds, and two rounds in opposite orders
    deadlock. Holds another transaction has locked (being committed or released) are
    skipped, never waited for.
    """
    lock_stock_levels_by_ids(
        [(store.pk, product_id) for _, product_id in due_lines]
        + [(store.pk, product.pk) for product in products]
    )
    batch = list(
        Reservation.objects.filter(
            pk__in={reservation_id for reservation_id, _ in due_lines},
            status=ReservationStatus.ACTIVE,
            expires_at__lte=timezone.now(),
        )
        .select_related("store")
        .order_by("pk")
        .select_for_update(skip_locked=True, of=("self",))
    )
    _close(batch, ReservationStatus.EXPIRED, MovementKind.EXPIRE, via=via, actor=actor)


def _reservation_reference(reservation: Reservation) -> str:
    return f"reservation:{reservation.pk}"


def _user(actor):
    return actor if actor is not None and actor.is_authenticated else None


def merge_lines(lines: Iterable[StockLine]) -> list[StockLine]:
    """One line per product, quantities summed, each checked; in product-id order."""
    totals: dict[int, StockLine] = {}
    for line in lines:
        _check_quantity(line.quantity)
        previous = totals.get(line.product.pk)
        quantity = line.quantity + (previous.quantity if previous else 0)
        totals[line.product.pk] = StockLine(line.product, quantity)
    if not totals:
        raise InvalidStockOperation("At least one line is needed.")
    merged = [totals[pk] for pk in sorted(totals)]
    for line in merged:
        _check_quantity(line.quantity)
    return merged


# --- The guarded change -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Change:
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


def _apply_and_announce(change: _Change, *, due_holds: bool = False) -> StockLevel:
    """A single-row operation: apply the change, send stock_changed after commit."""
    level = _apply(change, due_holds=due_holds)
    _announce(change.kind, [level])
    return level


def _apply(change: _Change, *, due_holds: bool = False) -> StockLevel:
    """Apply ``change`` with one guarded UPDATE and record its Movement.

    The guard keeps ``0 <= reserved <= on_hand`` after the change. A change that only adds
    units creates the missing level first; any other refused change raises
    InsufficientStock naming what is available now (one plain SELECT, which with
    ``due_holds`` also reads the lines of due holds on the level into the error's
    ``due_lines``, for ``_retry_after_expiring_due_holds``).
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


def _apply_locked(
    changes: list[_Change], locked: dict, *, also_audit: Iterable[dict] = ()
) -> list[StockLevel]:
    """Apply ``changes`` to their levels with ONE UPDATE (all rows, whatever their store),
    record their movements with ONE INSERT and their audit outbox entries, with the
    ``also_audit`` records (``audit_records``), with one more; returns the level after
    each change, in order.

    Several changes of one level become one row of the UPDATE and keep one movement each,
    in order, each with the values after it. The UPDATE's guard is the per-row
    invariant; a row it refuses (the caller's checks on the locked rows should have
    refused first) raises InsufficientStock, and the caller's transaction rolls back.

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
    return [
        _level(change, now, *values, movement.pk)
        for change, values, movement in zip(changes, after, movements, strict=True)
    ]


def _movement(change: _Change, now, on_hand: int, reserved: int, version: int) -> Movement:
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
        actor_id=getattr(_user(change.actor), "pk", None),
        created_at=now,
    )


# Rows per UPDATE of ``_apply_locked``: 4 parameters each stays far below SQLite's and
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


def _guarded_update(change: _Change, now) -> StockLevel | None:
    if connection.vendor == "postgresql":
        return _guarded_update_postgresql(change, now)
    return _guarded_update_portable(change, now)


@functools.cache
def _guarded_change_sql(audited: bool) -> str:
    """The guarded UPDATE, its ledger INSERT and (``audited``) its audit outbox INSERT;
    answers the level's new values and the recorded movement's id (no row if refused)."""
    audit = f", audited AS ({movement_outbox_sql('recorded')})" if audited else ""
    level_table = connection.ops.quote_name(StockLevel._meta.db_table)
    movement_table = connection.ops.quote_name(Movement._meta.db_table)
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
         RETURNING id, on_hand_after, reserved_after, version_after
        ){audit}
        SELECT changed.id, on_hand, reserved, reorder_point, version, recorded.id
          FROM changed, recorded
    """


def _guarded_update_postgresql(change: _Change, now) -> StockLevel | None:
    """The UPDATE and the ledger INSERT as one statement (one round trip under the lock)."""
    audited = settings.AUDIT_ENABLED
    params = _statement_params(change, now)
    if audited:
        params |= movement_outbox_params(
            kind=change.kind, store=change.store, product=change.product, actor=change.actor
        )
    with connection.cursor() as cursor:
        cursor.execute(_guarded_change_sql(audited), params)
        row = cursor.fetchone()
    if row is None:
        return None
    if audited:
        relay_after_commit()
    level_id, on_hand, reserved, reorder_point, version, movement_id = row
    return _level(change, now, level_id, on_hand, reserved, reorder_point, version, movement_id)


def _guarded_update_portable(change: _Change, now) -> StockLevel | None:
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
    return _level(change, now, level_id, on_hand, reserved, reorder_point, version, movement.pk)


def _statement_params(change: _Change, now) -> dict:
    actor = _user(change.actor)
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


# --- After commit -------------------------------------------------------------------


def _announce(kind: MovementKind | None, levels: list[StockLevel]) -> None:
    """Send ``stock_changed`` once the transaction has committed.

    A failing receiver is logged, never raised: the change is committed and the caller
    must hear that it succeeded.
    """

    def send():
        for receiver, result in stock_changed.send_robust(
            sender=StockLevel, kind=kind, levels=levels
        ):
            if isinstance(result, Exception):
                logger.error("stock_changed receiver %r failed", receiver, exc_info=result)

    transaction.on_commit(send, robust=True)


# --- Checks -------------------------------------------------------------------------


def refuse_inactive(store: Store, products: Iterable[Product]) -> None:
    """Raise StoreInactive or ProductInactive: a deactivated store or product keeps its
    stock and history, readable, but no unit is received, sold, held or moved."""
    if not store.is_active:
        raise StoreInactive(store.code)
    for product in products:
        if not product.is_active:
            raise ProductInactive(product.sku)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_quantity(value, *, name: str = "quantity") -> None:
    if not _is_int(value) or not 1 <= value <= MAX_QUANTITY:
        raise InvalidStockOperation(f"{name} must be a whole number from 1 to 1,000,000.")


def _check_reason(reason: str, *, required: bool) -> None:
    if not reason and not required:
        return
    if reason not in AdjustmentReason.values:
        raise InvalidStockOperation(f"reason must be one of: {', '.join(AdjustmentReason.values)}.")


def _check_reference(reference: str) -> None:
    if len(reference) > MAX_REFERENCE_LENGTH:
        raise InvalidStockOperation("reference is longer than 255 characters.")


# --- Seeding ------------------------------------------------------------------------

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

    Precondition: none of the pairs has a level yet (seed new stores or new products);
    otherwise InvalidStockOperation and nothing is written. No ``stock_changed`` is sent
    (a signal carrying millions of levels would only fill the cache with rows nobody
    asked for); ``stock_levels_seeded`` is, and its receiver retires the cached levels,
    since a pair read before the seeding is cached as a zero level.
    """
    store_ids = sorted({store.pk for store in stores})
    product_ids = sorted({product.pk for product in products})
    if not store_ids or not product_ids:
        raise InvalidStockOperation("Seeding needs at least one store and one product.")
    if not _is_int(reorder_point) or not 0 <= reorder_point <= MAX_QUANTITY:
        raise InvalidStockOperation("reorder_point must be a whole number from 0 to 1,000,000.")
    _check_reference(reference)
    quote = connection.ops.quote_name
    level_table = quote(StockLevel._meta.db_table)
    movement_table = quote(Movement._meta.db_table)
    store_id_rows, store_id_param = _id_rows(store_ids)
    product_id_rows, product_id_param = _id_rows(product_ids)
    seeded = (
        f"store_id IN (SELECT id FROM {store_id_rows} AS s) "
        f"AND product_id IN (SELECT id FROM {product_id_rows} AS p)"
    )
    actor_user = _user(actor)
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


def _id_rows(ids: list[int]) -> tuple[str, object]:
    """A subquery of one ``id`` column holding ``ids``, and its one parameter: an array
    on PostgreSQL, a JSON array elsewhere (SQLite). A placeholder per id would exceed
    either database's parameter limit long before 100,000 ids."""
    if connection.vendor == "postgresql":
        return "(SELECT unnest(%s::bigint[]) AS id)", ids
    return "(SELECT value AS id FROM json_each(%s))", "[" + ",".join(map(str, ids)) + "]"
