import pytest

from stock.exceptions import InsufficientStock, InvalidStockOperation, Shortage
from stock.models import AdjustmentReason, MovementKind
from stock.services import stock_adjust, stock_receive

from .helpers import assert_level_matches_ledger, level_of, movements_of


def test_adjust_down_records_the_reason(store, product, clerk):
    stock_receive(store=store, product=product, quantity=10)

    level = stock_adjust(
        store=store, product=product, delta=-3, reason=AdjustmentReason.DAMAGED, actor=clerk
    )

    assert (level.on_hand, level.version) == (7, 2)
    movement = movements_of(store, product)[-1]
    assert (movement.kind, movement.delta_on_hand, movement.reason, movement.actor) == (
        MovementKind.ADJUST,
        -3,
        "damaged",
        clerk,
    )
    assert_level_matches_ledger(store, product)


def test_adjust_up_creates_a_missing_level(store, product):
    level = stock_adjust(store=store, product=product, delta=4, reason=AdjustmentReason.FOUND)

    assert (level.on_hand, level.version) == (4, 1)


def test_adjust_below_zero_is_refused_and_changes_nothing(store, product):
    stock_receive(store=store, product=product, quantity=2)

    with pytest.raises(InsufficientStock) as refused:
        stock_adjust(store=store, product=product, delta=-3, reason=AdjustmentReason.LOST)

    assert refused.value.shortages == [Shortage("TEE-RED-M", requested=3, available=2)]
    assert (level_of(store, product).on_hand, level_of(store, product).version) == (2, 1)
    assert len(movements_of(store, product)) == 1


@pytest.mark.parametrize("delta", [0, 1_000_001, -1_000_001, 2.0, "1", False])
def test_adjust_refuses_a_bad_delta(store, product, delta):
    with pytest.raises(InvalidStockOperation):
        stock_adjust(store=store, product=product, delta=delta, reason=AdjustmentReason.FOUND)

    assert movements_of(store, product) == []


@pytest.mark.parametrize("reason", ["", "stolen", None])
def test_adjust_refuses_an_unknown_reason(store, product, reason):
    with pytest.raises(InvalidStockOperation):
        stock_adjust(store=store, product=product, delta=1, reason=reason)

    assert movements_of(store, product) == []


@pytest.mark.parametrize(
    "reason, delta, sentence",
    [
        ("damaged", 2, "A damaged adjustment lowers stock: delta must be negative."),
        ("lost", 1, "A lost adjustment lowers stock: delta must be negative."),
        ("found", -1, "A found adjustment raises stock: delta must be positive."),
        ("returned", -2, "A returned adjustment raises stock: delta must be positive."),
        ("received", -3, "A received adjustment raises stock: delta must be positive."),
    ],
)
def test_adjust_refuses_a_sign_that_does_not_fit_the_reason(
    store, product, reason, delta, sentence
):
    stock_receive(store=store, product=product, quantity=10)

    with pytest.raises(InvalidStockOperation) as refused:
        stock_adjust(store=store, product=product, delta=delta, reason=reason)

    assert refused.value.detail == sentence
    assert (level_of(store, product).on_hand, level_of(store, product).version) == (10, 1)
    assert len(movements_of(store, product)) == 1


@pytest.mark.parametrize(
    "reason, delta, on_hand",
    [
        ("damaged", -2, 8),
        ("lost", -1, 9),
        ("found", 1, 11),
        ("returned", 2, 12),
        ("received", 3, 13),
        ("correction", -4, 6),
        ("correction", 4, 14),
    ],
)
def test_adjust_accepts_a_sign_that_fits_the_reason(store, product, reason, delta, on_hand):
    stock_receive(store=store, product=product, quantity=10)

    level = stock_adjust(store=store, product=product, delta=delta, reason=reason)

    assert (level.on_hand, level.version) == (on_hand, 2)
    assert movements_of(store, product)[-1].reason == reason
