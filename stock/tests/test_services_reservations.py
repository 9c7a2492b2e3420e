from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from stock.exceptions import (
    InsufficientStock,
    InvalidStockOperation,
    ReservationNotActive,
    Shortage,
)
from stock.models import Movement, MovementKind, Reservation, ReservationLine, ReservationStatus
from stock.selectors import stock_levels_with_ledger_drift, stock_levels_with_reservation_drift
from stock.services import (
    StockLine,
    reservation_commit,
    reservation_create,
    reservation_release,
    reservations_expire_all_due,
    reservations_expire_due,
    stock_purchase,
    stock_receive,
)
from stock.tasks import expire_reservations

from .helpers import assert_level_matches_ledger, level_of


@pytest.fixture
def stocked(store, product, other_product):
    stock_receive(store=store, product=product, quantity=10)
    stock_receive(store=store, product=other_product, quantity=3)


def make_due(reservation):
    Reservation.objects.filter(pk=reservation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def assert_consistent(store, *products):
    for product in products:
        assert_level_matches_ledger(store, product)
    assert not stock_levels_with_reservation_drift().exists()
    assert not stock_levels_with_ledger_drift().exists()


def test_a_reservation_holds_every_line(store, product, other_product, stocked, clerk):
    reservation = reservation_create(
        store=store,
        lines=[StockLine(product, 2), StockLine(other_product, 3), StockLine(product, 1)],
        ttl_seconds=60,
        reference="cart-7",
        actor=clerk,
    )

    assert reservation.status == ReservationStatus.ACTIVE
    assert reservation.created_by == clerk
    assert reservation.expires_at - reservation.created_at == timedelta(seconds=60)
    assert [(line.product, line.quantity) for line in reservation.lines.all()] == [
        (product, 3),
        (other_product, 3),
    ]
    assert (level_of(store, product).reserved, level_of(store, product).available) == (3, 7)
    assert level_of(store, other_product).available == 0
    reserve_movements = Movement.objects.filter(kind=MovementKind.RESERVE)
    assert {(m.delta_on_hand, m.delta_reserved) for m in reserve_movements} == {(0, 3)}
    assert {m.reference for m in reserve_movements} == {f"reservation:{reservation.pk}"}
    assert_consistent(store, product, other_product)


def test_the_default_ttl_comes_from_settings(store, product, stocked, settings):
    settings.RESERVATION_DEFAULT_TTL_SECONDS = 120

    reservation = reservation_create(store=store, lines=[StockLine(product, 1)])

    assert reservation.expires_at - reservation.created_at == timedelta(seconds=120)


@pytest.mark.parametrize("ttl", [0, -1, 86_401, 1.5, "60", True])
def test_a_ttl_out_of_bounds_is_refused(store, product, stocked, ttl):
    with pytest.raises(InvalidStockOperation):
        reservation_create(store=store, lines=[StockLine(product, 1)], ttl_seconds=ttl)

    assert not Reservation.objects.exists()


def test_a_reservation_is_all_lines_or_none(store, product, other_product, stocked):
    with pytest.raises(InsufficientStock) as refused:
        reservation_create(store=store, lines=[StockLine(product, 2), StockLine(other_product, 4)])

    assert refused.value.shortages == [Shortage("MUG-BLUE", requested=4, available=3)]
    assert not Reservation.objects.exists()
    assert level_of(store, product).reserved == 0
    assert not Movement.objects.filter(kind=MovementKind.RESERVE).exists()


def test_held_units_cannot_be_sold(store, product, stocked):
    reservation_create(store=store, lines=[StockLine(product, 8)], ttl_seconds=60)

    with pytest.raises(InsufficientStock) as refused:
        stock_purchase(store=store, product=product, quantity=3)

    assert refused.value.shortages == [Shortage("TEE-RED-M", requested=3, available=2)]


def test_commit_takes_the_units_from_on_hand_and_reserved(store, product, stocked, clerk):
    reservation = reservation_create(store=store, lines=[StockLine(product, 4)], ttl_seconds=60)

    committed = reservation_commit(reservation=reservation, actor=clerk)

    assert (committed.status, committed.closed_by, committed.closed_via) == (
        ReservationStatus.COMMITTED,
        clerk,
        "commit",
    )
    level = level_of(store, product)
    assert (level.on_hand, level.reserved, level.available) == (6, 0, 6)
    movement = Movement.objects.get(kind=MovementKind.COMMIT)
    assert (movement.delta_on_hand, movement.delta_reserved) == (-4, -4)
    assert_consistent(store, product)


def test_committing_again_changes_nothing(store, product, stocked):
    reservation = reservation_create(store=store, lines=[StockLine(product, 4)], ttl_seconds=60)
    reservation_commit(reservation=reservation)

    again = reservation_commit(reservation=reservation)

    assert again.status == ReservationStatus.COMMITTED
    assert level_of(store, product).on_hand == 6
    assert Movement.objects.filter(kind=MovementKind.COMMIT).count() == 1


def test_release_gives_the_units_back(store, product, stocked, clerk):
    reservation = reservation_create(store=store, lines=[StockLine(product, 4)], ttl_seconds=60)

    released = reservation_release(reservation=reservation, actor=clerk)

    assert released.status == ReservationStatus.RELEASED
    level = level_of(store, product)
    assert (level.on_hand, level.reserved) == (10, 0)
    assert_consistent(store, product)


@pytest.mark.parametrize(
    "first, then",
    [
        (reservation_commit, reservation_release),
        (reservation_release, reservation_commit),
        (reservation_release, reservation_release),
    ],
)
def test_a_closed_reservation_is_not_active(store, product, stocked, first, then):
    reservation = reservation_create(store=store, lines=[StockLine(product, 4)], ttl_seconds=60)
    first(reservation=reservation)
    movements = Movement.objects.count()

    with pytest.raises(ReservationNotActive):
        then(reservation=reservation)

    assert Movement.objects.count() == movements


@pytest.mark.parametrize("finish", [reservation_commit, reservation_release])
def test_finishing_a_hold_past_its_expiry_expires_it_instead(
    store, product, stocked, finish, clerk
):
    reservation = reservation_create(store=store, lines=[StockLine(product, 4)], ttl_seconds=60)
    make_due(reservation)

    with pytest.raises(ReservationNotActive) as refused:
        finish(reservation=reservation, actor=clerk)

    assert refused.value.status == ReservationStatus.EXPIRED
    reservation.refresh_from_db()
    assert (reservation.status, reservation.closed_by) == (ReservationStatus.EXPIRED, clerk)
    assert reservation.closed_via.endswith("after expiry")
    assert (level_of(store, product).on_hand, level_of(store, product).reserved) == (10, 0)
    assert Movement.objects.filter(kind=MovementKind.EXPIRE).count() == 1
    assert_consistent(store, product)


def test_the_sweep_expires_due_holds_only(store, product, other_product, stocked):
    due = [
        reservation_create(store=store, lines=[StockLine(product, 1)], ttl_seconds=60)
        for _ in range(3)
    ]
    fresh = reservation_create(store=store, lines=[StockLine(other_product, 1)], ttl_seconds=60)
    for reservation in due:
        make_due(reservation)

    assert reservations_expire_due(via="test", limit=2) == 2
    assert reservations_expire_all_due(via="test") == 1
    assert reservations_expire_all_due(via="test") == 0

    statuses = dict(Reservation.objects.values_list("pk", "status"))
    assert [statuses[r.pk] for r in due] == ["expired"] * 3
    assert statuses[fresh.pk] == "active"
    expired = Movement.objects.filter(kind=MovementKind.EXPIRE)
    assert [(m.delta_on_hand, m.delta_reserved, m.reason) for m in expired] == [(0, -1, "test")] * 3
    assert_consistent(store, product, other_product)


def test_holds_on_one_level_closed_together_record_one_step_each(store, product, stocked):
    """One UPDATE changes the level by both holds at once; the ledger still has one
    movement per line, each with the values after its own step."""
    holds = [
        reservation_create(store=store, lines=[StockLine(product, quantity)], ttl_seconds=60)
        for quantity in (2, 3)
    ]
    for reservation in holds:
        make_due(reservation)

    assert reservations_expire_due(via="test") == 2

    first, second = Movement.objects.filter(kind=MovementKind.EXPIRE).order_by("id")
    assert sorted([first.delta_reserved, second.delta_reserved]) == [-3, -2]
    assert (first.reserved_after, first.version_after) == (5 + first.delta_reserved, 4)
    assert (second.reserved_after, second.version_after) == (0, 5)
    assert {first.on_hand_after, second.on_hand_after} == {10}
    level = level_of(store, product)
    assert (level.on_hand, level.reserved, level.version) == (10, 0, 5)
    assert_consistent(store, product)


def test_the_task_and_the_command_expire_due_holds(store, product, stocked, capsys):
    first = reservation_create(store=store, lines=[StockLine(product, 1)], ttl_seconds=60)
    second = reservation_create(store=store, lines=[StockLine(product, 1)], ttl_seconds=60)
    make_due(first)

    assert expire_reservations() == 1
    make_due(second)
    call_command("expire_reservations")

    assert capsys.readouterr().out == "Expired 1 reservation(s).\n"
    assert dict(Reservation.objects.values_list("pk", "closed_via")) == {
        first.pk: "beat sweep",
        second.pk: "expire_reservations command",
    }


def test_a_sale_that_finds_stock_short_expires_due_holds_first(store, product, stocked):
    reservation = reservation_create(store=store, lines=[StockLine(product, 8)], ttl_seconds=60)
    make_due(reservation)

    level = stock_purchase(store=store, product=product, quantity=9)

    assert (level.on_hand, level.reserved) == (1, 0)
    reservation.refresh_from_db()
    assert (reservation.status, reservation.closed_via) == ("expired", "purchase found stock short")
    assert_consistent(store, product)


def test_a_reservation_that_finds_stock_short_expires_due_holds_first(store, product, stocked):
    stale = reservation_create(store=store, lines=[StockLine(product, 8)], ttl_seconds=60)
    make_due(stale)

    fresh = reservation_create(store=store, lines=[StockLine(product, 9)], ttl_seconds=60)

    assert fresh.status == "active"
    assert Reservation.objects.get(pk=stale.pk).status == "expired"
    assert level_of(store, product).reserved == 9
    assert_consistent(store, product)


def test_a_sale_refused_even_without_the_due_holds_changes_nothing(store, product, stocked):
    reservation = reservation_create(store=store, lines=[StockLine(product, 2)], ttl_seconds=60)
    make_due(reservation)

    with pytest.raises(InsufficientStock):
        stock_purchase(store=store, product=product, quantity=11)

    # The refused sale is one transaction: its expiry is rolled back with it, and the
    # next sweep (or sale) expires the hold.
    assert Reservation.objects.get(pk=reservation.pk).status == "active"
    assert (level_of(store, product).on_hand, level_of(store, product).reserved) == (10, 2)


def test_verify_ledger_names_reserved_units_no_reservation_holds(store, product, stocked, capsys):
    reservation = reservation_create(store=store, lines=[StockLine(product, 4)], ttl_seconds=60)
    ReservationLine.objects.filter(reservation=reservation).update(quantity=3)

    with pytest.raises(CommandError, match=r"Ledger drift: 1 problem\(s\) found\."):
        call_command("verify_ledger")

    assert capsys.readouterr().err == (
        "berlin-01/TEE-RED-M: reserved=4 but active reservations hold 3\n"
    )
