"""Single-level operations: receive, adjust, count, sell, and reorder points."""

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from catalog.models import Product
from stores.models import Store

from .. import flash_gate
from ..exceptions import InsufficientStock, InvalidStockOperation, Shortage, VersionMismatch
from ..metrics import counted
from ..models import MovementKind, StockLevel
from .event_log import reorder_point_event, write_events
from .locks import ensure_stock_levels, lock_stock_levels
from .reservations import retry_after_expiring_due_holds
from .rules import (
    MAX_QUANTITY,
    adjustment_sign_problem,
    check_quantity,
    check_reason,
    check_reference,
    is_int,
    refuse_inactive,
)
from .sql import Change, announce, apply_and_announce


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
    check_quantity(quantity)
    check_reference(reference)
    refuse_inactive(store, [product])
    return apply_and_announce(
        Change(
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
    if not is_int(delta) or delta == 0 or abs(delta) > MAX_QUANTITY:
        raise InvalidStockOperation(
            "delta must be a non-zero whole number from -1,000,000 to 1,000,000."
        )
    check_reason(reason, required=True)
    problem = adjustment_sign_problem(delta, reason)
    if problem:
        raise InvalidStockOperation(problem)
    refuse_inactive(store, [product])
    return apply_and_announce(
        Change(
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
    if not is_int(on_hand) or not 0 <= on_hand <= MAX_QUANTITY:
        raise InvalidStockOperation("on_hand must be a whole number from 0 to 1,000,000.")
    if expected_version is not None and (not is_int(expected_version) or expected_version < 0):
        raise InvalidStockOperation("The expected version must be a whole number >= 0.")
    check_reason(reason, required=False)
    refuse_inactive(store, [product])
    ensure_stock_levels([(store, product)])
    level = lock_stock_levels([(store, product)])[(store.pk, product.pk)]
    if expected_version is not None and level.version != expected_version:
        raise VersionMismatch(expected=expected_version, current=level.version)
    if on_hand < level.reserved:
        raise InsufficientStock(
            [Shortage(product.sku, requested=level.on_hand - on_hand, available=level.available)]
        )
    return apply_and_announce(
        Change(
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
    (``retry_after_expiring_due_holds`` owns the transactions).

    A level whose flash-sale gate is on admits the buyer in Redis first
    (``stock.flash_gate``): refused there, the sale is refused before any query.
    """
    check_quantity(quantity)
    check_reference(reference)
    refuse_inactive(store, [product])
    admission = flash_gate.admit(store, [(product, quantity)])
    change = Change(
        store=store,
        product=product,
        kind=MovementKind.SALE,
        delta_on_hand=-quantity,
        reference=reference,
        actor=actor,
    )
    with flash_gate.settled(admission) as committed:
        level = retry_after_expiring_due_holds(
            lambda: apply_and_announce(change, due_holds=True),
            store,
            [product],
            via="purchase",
            actor=actor,
            one_statement=True,
        )
        committed([level])
    return level


@counted("reorder_point")
@transaction.atomic
def stock_set_reorder_point(
    *, store: Store, product: Product, reorder_point: int, actor=None
) -> StockLevel:
    """Set the level at or below which the product counts as low stock in ``store``.

    Not a stock movement: ``version`` and the ledger stay as they are. Receivers of
    ``stock_changed`` still hear of it (``kind`` None), since the level's data changed,
    and a new value writes a stock event (``event_log.reorder_point_event``): the level
    may become low, or stop being low, by it.
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
    change does; each level is audited on its own, and each level whose reorder point
    changed gets its event, numbered in primary-key order."""
    return _set_reorder_points(list(pairs), reorder_point, actor)


def _set_reorder_points(pairs, reorder_point, actor) -> list[StockLevel]:
    """Precondition: inside ``transaction.atomic``. The levels are locked first, then the
    events' numbers taken (the lock order of ``locks``)."""
    if not is_int(reorder_point) or not 0 <= reorder_point <= MAX_QUANTITY:
        raise InvalidStockOperation("reorder_point must be a whole number from 0 to 1,000,000.")
    ensure_stock_levels(pairs)
    locked = lock_stock_levels(pairs)
    stores = {store.pk: store for store, _ in pairs}
    products = {product.pk: product for _, product in pairs}
    levels = sorted(locked.values(), key=lambda level: level.pk)
    moved = [level for level in levels if level.reorder_point != reorder_point]
    StockLevel.objects.filter(pk__in=[level.pk for level in moved]).update(
        reorder_point=reorder_point
    )
    now = timezone.now()
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
        before, level.reorder_point = level.reorder_point, reorder_point
        if before != reorder_point:
            level.event = reorder_point_event(level, reorder_point_before=before, at=now)
    write_events([level.event for level in moved])
    announce(None, levels)
    return levels
