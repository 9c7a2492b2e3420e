import pytest

from stock.exceptions import InvalidStockOperation
from stock.models import MovementKind, StockLevel
from stock.services import stock_receive

from .helpers import assert_level_matches_ledger, level_of, movements_of


def test_receive_creates_the_level_and_one_movement(store, product, clerk):
    level = stock_receive(
        store=store, product=product, quantity=12, reference="PO-1", note="pallet 3", actor=clerk
    )

    assert (level.on_hand, level.reserved, level.available, level.version) == (12, 0, 12, 1)
    assert level_of(store, product).on_hand == 12
    [movement] = movements_of(store, product)
    assert movement.kind == MovementKind.RECEIVE
    assert (movement.delta_on_hand, movement.delta_reserved) == (12, 0)
    assert (movement.on_hand_after, movement.reserved_after, movement.version_after) == (12, 0, 1)
    assert (movement.reference, movement.note, movement.actor) == ("PO-1", "pallet 3", clerk)


def test_receive_adds_to_an_existing_level(store, product):
    stock_receive(store=store, product=product, quantity=5)

    level = stock_receive(store=store, product=product, quantity=7)

    assert (level.on_hand, level.version) == (12, 2)
    assert [m.on_hand_after for m in movements_of(store, product)] == [5, 12]
    assert_level_matches_ledger(store, product)


@pytest.mark.parametrize("quantity", [0, -1, 1_000_001, 1.5, "3", True, None])
def test_receive_refuses_a_bad_quantity_and_changes_nothing(store, product, quantity):
    with pytest.raises(InvalidStockOperation):
        stock_receive(store=store, product=product, quantity=quantity)

    assert not StockLevel.objects.exists()
    assert movements_of(store, product) == []


def test_receive_refuses_an_overlong_reference(store, product):
    with pytest.raises(InvalidStockOperation):
        stock_receive(store=store, product=product, quantity=1, reference="x" * 256)

    assert not StockLevel.objects.exists()
