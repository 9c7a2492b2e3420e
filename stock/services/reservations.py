"""Checkout holds: reserve, commit, release, expire; and the retry that expires due
holds when stock runs short, so an expired hold never blocks a buyer."""

import contextlib
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from stores.models import Store

from .. import flash_gate
from ..exceptions import InsufficientStock, InvalidStockOperation, ReservationNotActive
from ..metrics import counted
from ..models import MovementKind, Reservation, ReservationLine, ReservationStatus
from .locks import lock_stock_levels, lock_stock_levels_by_ids
from .rules import (
    StockLine,
    check_reference,
    is_int,
    merge_lines,
    refuse_inactive,
    refuse_shortages,
    user_of,
)
from .sql import Change, announce, apply_locked

MAX_RESERVATION_TTL_SECONDS = 24 * 60 * 60
RESERVATION = "stock.reservation"


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
    never blocks a buyer. Lines of gated levels are admitted by the flash-sale gate
    first, as a purchase is.
    """
    lines = merge_lines(lines)
    ttl_seconds = settings.RESERVATION_DEFAULT_TTL_SECONDS if ttl_seconds is None else ttl_seconds
    if not is_int(ttl_seconds) or not 1 <= ttl_seconds <= MAX_RESERVATION_TTL_SECONDS:
        raise InvalidStockOperation("ttl_seconds must be a whole number from 1 to 86400.")
    check_reference(reference)
    refuse_inactive(store, [line.product for line in lines])
    admission = flash_gate.admit(store, [(line.product, line.quantity) for line in lines])

    def reserve() -> Reservation:
        locked = lock_stock_levels((store, line.product) for line in lines)
        refuse_shortages(store, lines, locked)
        now = timezone.now()
        reservation = Reservation.objects.create(
            store=store,
            reference=reference,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
            created_by=user_of(actor),
        )
        ReservationLine.objects.bulk_create(
            ReservationLine(reservation=reservation, product=line.product, quantity=line.quantity)
            for line in lines
        )
        changes = [
            Change(
                store=store,
                product=line.product,
                kind=MovementKind.RESERVE,
                delta_on_hand=0,
                delta_reserved=line.quantity,
                reference=reservation_reference(reservation),
                actor=actor,
            )
            for line in lines
        ]
        created = {
            "action": "reservation.create",
            "object_type": RESERVATION,
            "object_id": reservation.pk,
            "object_repr": reservation_reference(reservation),
            "store": store,
            "before": None,
            "after": {
                "status": str(reservation.status),
                "expires_at": reservation.expires_at.isoformat(),
                "reference": reference,
                "lines": [{"sku": line.product.sku, "quantity": line.quantity} for line in lines],
            },
        }
        levels = apply_locked(changes, locked, also_audit=[created])
        announce(MovementKind.RESERVE, levels, reservations=[reservation])
        committed(levels)
        return reservation

    with flash_gate.settled(admission) as committed:
        return retry_after_expiring_due_holds(
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
        Change(
            store=by_id[line.reservation_id].store,
            product=line.product,
            kind=kind,
            delta_on_hand=-line.quantity if kind == MovementKind.COMMIT else 0,
            delta_reserved=-line.quantity,
            reason=via,
            reference=reservation_reference(by_id[line.reservation_id]),
            actor=actor,
        )
        for line in lines
    ]
    closed = [
        {
            "action": f"reservation.{kind}",
            "object_type": RESERVATION,
            "object_id": reservation.pk,
            "object_repr": reservation_reference(reservation),
            "store": reservation.store,
            "before": {"status": str(reservation.status)},
            "after": {"status": str(status), "closed_via": via},
        }
        for reservation in reservations
    ]
    levels = apply_locked(changes, locked, also_audit=closed)
    now, closed_by = timezone.now(), user_of(actor)
    Reservation.objects.filter(pk__in=by_id).update(
        status=status, closed_at=now, closed_by=closed_by, closed_via=via
    )
    for reservation in reservations:
        reservation.status, reservation.closed_at, reservation.closed_via = status, now, via
        reservation.closed_by = closed_by
    announce(kind, levels, reservations=reservations)


def retry_after_expiring_due_holds(
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
    raised by ``apply_change(..., due_holds=True)`` already carries the due lines, read by the
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


def reservation_reference(reservation: Reservation) -> str:
    return f"reservation:{reservation.pk}"
