import pytest

from stock.exceptions import InsufficientStock, InvalidStockOperation, Shortage
from stock.models import MovementKind, StockLevel
from stock.services import stock_purchase, stock_receive

from .helpers import assert_level_matches_ledger, level_of, movements_of


def test_purchase_sells_available_units(store, product, clerk):
    stock_receive(store=store, product=product, quantity=5)

    level = stock_purchase(
        store=store, product=product, quantity=2, reference="order-7", actor=clerk
    )

    assert (level.on_hand, level.available, level.version) == (3, 3, 2)
    movement = movements_of(store, product)[-1]
    assert (movement.kind, movement.delta_on_hand, movement.reference, movement.actor) == (
        MovementKind.SALE,
        -2,
        "order-7",
        clerk,
    )
    assert_level_matches_ledger(store, product)


def test_purchase_of_the_last_units(store, product):
    stock_receive(store=store, product=product, quantity=2)

    level = stock_purchase(store=store, product=product, quantity=2)

    assert (level.on_hand, level.available) == (0, 0)


def test_purchase_beyond_available_is_refused_and_changes_nothing(store, product):
    stock_receive(store=store, product=product, quantity=2)

    with pytest.raises(InsufficientStock) as refused:
        stock_purchase(store=store, product=product, quantity=3)

    assert refused.value.code == "insufficient_stock"
    assert refused.value.shortages == [Shortage("TEE-RED-M", requested=3, available=2)]
    assert (level_of(store, product).on_hand, level_of(store, product).version) == (2, 1)
    assert len(movements_of(store, product)) == 1


def test_purchase_cannot_sell_reserved_units(store, product):
    stock_receive(store=store, product=product, quantity=5)
    # No reservation service exists yet; a direct UPDATE sets up the reserved units.
    StockLevel.objects.filter(store=store, product=product).update(reserved=4)

    with pytest.raises(InsufficientStock) as refused:
        stock_purchase(store=store, product=product, quantity=2)

    assert refused.value.shortages == [Shortage("TEE-RED-M", requested=2, available=1)]
    assert level_of(store, product).on_hand == 5


def test_purchase_of_a_never_stocked_product_is_refused_without_creating_a_level(store, product):
    with pytest.raises(InsufficientStock) as refused:
        stock_purchase(store=store, product=product, quantity=1)

    assert refused.value.shortages == [Shortage("TEE-RED-M", requested=1, available=0)]
    assert not StockLevel.objects.exists()


@pytest.mark.parametrize("quantity", [0, -2, 1_000_001, 0.5, "1", True, None])
def test_purchase_refuses_a_bad_quantity(store, product, quantity):
    stock_receive(store=store, product=product, quantity=5)

    with pytest.raises(InvalidStockOperation):
        stock_purchase(store=store, product=product, quantity=quantity)

    assert level_of(store, product).version == 1
