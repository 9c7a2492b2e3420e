"""Real races on checkout holds (PostgreSQL): many threads, each on its own connection,
released together.

PostgreSQL allows 100 connections, so no test runs more than 50 threads at once; to run
more operations each thread loops. Every test checks the outcome exactly (how many
succeeded, the final levels, one closing movement per hold, no drift between a level, its
ledger and its active holds), so an oversell, a hold closed twice or a deadlock fails it.
"""

from collections import Counter
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from stock.exceptions import InsufficientStock, ReservationNotActive
from stock.models import (
    Movement,
    MovementKind,
    Reservation,
    ReservationLine,
    ReservationStatus,
    StockLevel,
)
from stock.selectors import stock_levels_with_ledger_drift, stock_levels_with_reservation_drift
from stock.services import (
    StockLine,
    reservation_commit,
    reservation_create,
    reservation_release,
    reservations_expire_all_due,
    reservations_expire_due,
    stock_receive,
)
from tests.concurrency import run_together
from tests.factories import ProductFactory, StoreFactory

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]

THREADS = 50


def each_outcome(operations):
    """A call running ``operations`` one after another; it returns each one's result or
    the exception it raised, so one refusal does not stop the rest of the thread's work."""

    def run():
        outcomes = []
        for operation in operations:
            try:
                outcomes.append(operation())
            except Exception as error:
                outcomes.append(error)
        return outcomes

    return run


def flatten(outcomes_per_thread):
    errors = [o for o in outcomes_per_thread if isinstance(o, Exception)]
    assert errors == [], errors
    return [outcome for outcomes in outcomes_per_thread for outcome in outcomes]


def assert_no_drift():
    assert list(stock_levels_with_ledger_drift()) == []
    assert list(stock_levels_with_reservation_drift()) == []


def test_300_single_unit_holds_for_100_units_exactly_100_are_taken():
    """50 threads each try 6 holds of one unit."""
    store, product = StoreFactory(), ProductFactory()
    stock_receive(store=store, product=product, quantity=100)

    def hold():
        return reservation_create(store=store, lines=[StockLine(product, 1)])

    outcomes = flatten(
        run_together([each_outcome([hold] * 6) for _ in range(THREADS)], timeout=180)
    )

    assert len(outcomes) == 300
    held = [o for o in outcomes if isinstance(o, Reservation)]
    refused = [o for o in outcomes if isinstance(o, InsufficientStock)]
    assert (len(held), len(refused)) == (100, 200), Counter(type(o).__name__ for o in outcomes)
    assert len({reservation.pk for reservation in held}) == 100
    active = Reservation.objects.filter(store=store, status=ReservationStatus.ACTIVE)
    assert active.count() == 100
    assert set(active.values_list("pk", flat=True)) == {r.pk for r in held}
    level = StockLevel.objects.get(store=store, product=product)
    assert (level.on_hand, level.reserved, level.available) == (100, 100, 0)
    assert (level.version, Movement.objects.filter(kind=MovementKind.RESERVE).count()) == (
        101,
        100,
    )
    assert_no_drift()


def test_commit_release_and_expiry_sweeps_racing_on_the_same_holds_close_each_once():
    """100 one-unit holds, every other one already due. For each hold one thread commits
    it and another releases it, while sweepers expire what is due.

    A hold that is not due ends committed or released (one of the two wins, the other is
    told ReservationNotActive); a due one ends expired, by a sweep or by the commit or
    release that found it due. Each hold gets exactly one closing movement.
    """
    store, product = StoreFactory(), ProductFactory()
    stock_receive(store=store, product=product, quantity=150)
    holds = [reservation_create(store=store, lines=[StockLine(product, 1)]) for _ in range(100)]
    due = holds[::2]
    Reservation.objects.filter(pk__in=[r.pk for r in due]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    pairs = 20
    # Committer j and releaser j share the holds j, j+20, ...: the committer takes them
    # first to last, the releaser last to first, so both win some and race on the middle.
    committers = [
        each_outcome([lambda r=r: reservation_commit(reservation=r) for r in holds[j::pairs]])
        for j in range(pairs)
    ]
    releasers = [
        each_outcome(
            [lambda r=r: reservation_release(reservation=r) for r in reversed(holds[j::pairs])]
        )
        for j in range(pairs)
    ]
    sweepers = [
        each_outcome(
            [lambda i=i: reservations_expire_due(via=f"sweep {i}", limit=3)] * 4
            if i % 2
            else [lambda i=i: reservations_expire_all_due(via=f"sweep {i}")] * 2
        )
        for i in range(8)
    ]

    outcomes = run_together(committers + releasers + sweepers, timeout=180)

    finishing = flatten(outcomes[: 2 * pairs])
    swept = flatten(outcomes[2 * pairs :])
    assert all(isinstance(count, int) for count in swept), swept
    finished = [o for o in finishing if isinstance(o, Reservation)]
    not_active = [o for o in finishing if isinstance(o, ReservationNotActive)]
    # Per hold that was not due: one winner and one ReservationNotActive; per due hold:
    # two ReservationNotActive.
    assert (len(finished), len(not_active)) == (50, 150), Counter(
        type(o).__name__ for o in finishing
    )

    closed = {r.pk: r for r in Reservation.objects.filter(store=store)}
    assert len(closed) == 100
    statuses = Counter(r.status for r in closed.values())
    assert statuses[ReservationStatus.ACTIVE] == 0
    assert statuses[ReservationStatus.EXPIRED] == 50
    assert statuses[ReservationStatus.COMMITTED] >= 1
    assert statuses[ReservationStatus.RELEASED] >= 1
    assert statuses[ReservationStatus.COMMITTED] + statuses[ReservationStatus.RELEASED] == 50
    assert {closed[r.pk].status for r in due} == {ReservationStatus.EXPIRED}
    assert {r.pk: r.status for r in finished} == {
        pk: r.status for pk, r in closed.items() if r.status != ReservationStatus.EXPIRED
    }
    for reservation in closed.values():
        assert reservation.closed_at is not None
        expected_via = {
            ReservationStatus.COMMITTED: {"commit"},
            ReservationStatus.RELEASED: {"release"},
            ReservationStatus.EXPIRED: {
                "commit after expiry",
                "release after expiry",
                *(f"sweep {i}" for i in range(8)),
            },
        }[reservation.status]
        assert reservation.closed_via in expected_via, (reservation.status, reservation.closed_via)
    # Every due hold was expired by a sweep or by a commit or release that found it due.
    by_sweep = sum(1 for r in closed.values() if r.closed_via.startswith("sweep "))
    assert sum(swept) == by_sweep
    assert by_sweep + sum(1 for r in closed.values() if r.closed_via.endswith("after expiry")) == 50

    closing_kinds = {
        ReservationStatus.COMMITTED: MovementKind.COMMIT,
        ReservationStatus.RELEASED: MovementKind.RELEASE,
        ReservationStatus.EXPIRED: MovementKind.EXPIRE,
    }
    closing = Counter(
        Movement.objects.filter(
            kind__in=closing_kinds.values(), reference__startswith="reservation:"
        ).values_list("reference", "kind")
    )
    assert closing == {
        (f"reservation:{pk}", closing_kinds[r.status]): 1 for pk, r in closed.items()
    }
    level = StockLevel.objects.get(store=store, product=product)
    committed = statuses[ReservationStatus.COMMITTED]
    held = ReservationLine.objects.filter(reservation__status=ReservationStatus.ACTIVE).aggregate(
        total=Sum("quantity")
    )["total"]
    assert (level.on_hand, level.reserved, held) == (150 - committed, 0, None)
    assert level.version == 1 + 100 + 100
    assert_no_drift()


def test_200_two_line_holds_with_lines_in_opposite_orders_never_deadlock():
    """50 threads make 4 holds each, half with lines (p1, p2), half with (p2, p1)."""
    store = StoreFactory()
    p1, p2 = ProductFactory(), ProductFactory()
    quantities = {p1: 1, p2: 2}
    for product, quantity in quantities.items():
        stock_receive(store=store, product=product, quantity=200 * quantity)

    def hold(forward: bool):
        lines = [StockLine(p, quantities[p]) for p in ((p1, p2) if forward else (p2, p1))]
        return lambda: reservation_create(store=store, lines=lines)

    outcomes = flatten(
        run_together(
            [each_outcome([hold(forward=i % 2 == 0)] * 4) for i in range(THREADS)], timeout=180
        )
    )

    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert errors == []
    assert len({reservation.pk for reservation in outcomes}) == 200
    assert Reservation.objects.filter(status=ReservationStatus.ACTIVE).count() == 200
    for product, quantity in quantities.items():
        level = StockLevel.objects.get(store=store, product=product)
        assert (level.on_hand, level.reserved, level.available, level.version) == (
            200 * quantity,
            200 * quantity,
            0,
            201,
        )
    assert Movement.objects.filter(kind=MovementKind.RESERVE).count() == 400
    assert_no_drift()
