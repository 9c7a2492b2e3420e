import pytest

from stock.exceptions import InsufficientStock, InvalidStockOperation, VersionMismatch
from stock.models import MovementKind, StockLevel
from stock.services import stock_purchase, stock_receive, stock_set_count

from .helpers import assert_level_matches_ledger, level_of, movements_of


def test_set_count_records_the_difference(store, product):
    stock_receive(store=store, product=product, quantity=10)

    level = stock_set_count(store=store, product=product, on_hand=7, reason="correction")

    assert (level.on_hand, level.version) == (7, 2)
    movement = movements_of(store, product)[-1]
    assert (movement.kind, movement.delta_on_hand, movement.on_hand_after, movement.reason) == (
        MovementKind.SET,
        -3,
        7,
        "correction",
    )
    assert_level_matches_ledger(store, product)


def test_set_count_of_a_never_stocked_product(store, product):
    level = stock_set_count(store=store, product=product, on_hand=3, expected_version=0)

    assert (level.on_hand, level.version) == (3, 1)


def test_a_count_that_matches_is_still_recorded(store, product):
    stock_receive(store=store, product=product, quantity=4)

    level = stock_set_count(store=store, product=product, on_hand=4)

    assert (level.on_hand, level.version) == (4, 2)
    assert movements_of(store, product)[-1].delta_on_hand == 0


def test_set_count_with_the_current_version_succeeds(store, product):
    stock_receive(store=store, product=product, quantity=4)

    level = stock_set_count(store=store, product=product, on_hand=9, expected_version=1)

    assert (level.on_hand, level.version) == (9, 2)


def test_set_count_with_a_stale_version_is_refused_and_changes_nothing(store, product):
    stock_receive(store=store, product=product, quantity=4)
    stock_purchase(store=store, product=product, quantity=1)

    with pytest.raises(VersionMismatch) as refused:
        stock_set_count(store=store, product=product, on_hand=9, expected_version=1)

    assert (refused.value.expected, refused.value.current) == (1, 2)
    assert (level_of(store, product).on_hand, level_of(store, product).version) == (3, 2)
    assert len(movements_of(store, product)) == 2


@pytest.mark.parametrize("on_hand", [-1, 1_000_001, 1.0, "2", True, None])
def test_set_count_refuses_a_bad_count(store, product, on_hand):
    with pytest.raises(InvalidStockOperation):
        stock_set_count(store=store, product=product, on_hand=on_hand)

    assert movements_of(store, product) == []


def test_set_count_below_reserved_is_refused(store, product):
    """Reserved units are promised to buyers; a count cannot make them disappear."""
    stock_receive(store=store, product=product, quantity=5)
    # No reservation service exists yet; a direct UPDATE sets up the reserved units.
    StockLevel.objects.filter(store=store, product=product).update(reserved=3)

    with pytest.raises(InsufficientStock):
        stock_set_count(store=store, product=product, on_hand=2)

    assert level_of(store, product).on_hand == 5
