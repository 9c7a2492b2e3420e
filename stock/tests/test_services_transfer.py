import pytest

from stock.exceptions import InsufficientStock, InvalidStockOperation, Shortage
from stock.models import Movement, MovementKind, StockLevel
from stock.services import StockLine, stock_receive, stock_transfer

from .helpers import assert_level_matches_ledger, level_of


def test_transfer_moves_every_line(store, other_store, product, other_product, clerk):
    stock_receive(store=store, product=product, quantity=10)
    stock_receive(store=store, product=other_product, quantity=4)

    transfer = stock_transfer(
        from_store=store,
        to_store=other_store,
        lines=[StockLine(product, 6), StockLine(other_product, 4)],
        note="restock Hamburg",
        actor=clerk,
    )

    assert [(lvl.product, lvl.on_hand) for lvl in transfer.source_levels] == [
        (product, 4),
        (other_product, 0),
    ]
    assert [(lvl.product, lvl.on_hand) for lvl in transfer.destination_levels] == [
        (product, 6),
        (other_product, 4),
    ]
    assert level_of(other_store, product).on_hand == 6
    moved = Movement.objects.filter(reference=transfer.reference).order_by("id")
    assert [(m.store, m.product, m.kind, m.delta_on_hand) for m in moved] == [
        (store, product, MovementKind.TRANSFER_OUT, -6),
        (store, other_product, MovementKind.TRANSFER_OUT, -4),
        (other_store, product, MovementKind.TRANSFER_IN, 6),
        (other_store, other_product, MovementKind.TRANSFER_IN, 4),
    ]
    assert {(m.note, m.actor) for m in moved} == {("restock Hamburg", clerk)}
    for place in (store, other_store):
        for item in (product, other_product):
            assert_level_matches_ledger(place, item)


def test_transfer_merges_lines_of_the_same_product(store, other_store, product):
    stock_receive(store=store, product=product, quantity=10)

    transfer = stock_transfer(
        from_store=store,
        to_store=other_store,
        lines=[StockLine(product, 2), StockLine(product, 3)],
    )

    assert transfer.lines == [StockLine(product, 5)]
    assert (level_of(store, product).on_hand, level_of(other_store, product).on_hand) == (5, 5)
    assert Movement.objects.filter(reference=transfer.reference).count() == 2


def test_transfer_is_all_or_nothing(store, other_store, product, other_product):
    stock_receive(store=store, product=product, quantity=10)
    stock_receive(store=store, product=other_product, quantity=1)

    with pytest.raises(InsufficientStock) as refused:
        stock_transfer(
            from_store=store,
            to_store=other_store,
            lines=[StockLine(product, 5), StockLine(other_product, 2)],
        )

    assert refused.value.shortages == [Shortage("MUG-BLUE", requested=2, available=1)]
    assert level_of(store, product).on_hand == 10
    assert level_of(store, other_product).on_hand == 1
    assert not StockLevel.objects.filter(store=other_store).exists()
    assert Movement.objects.count() == 2


def test_transfer_reports_every_short_line(store, other_store, product, other_product):
    stock_receive(store=store, product=product, quantity=1)

    with pytest.raises(InsufficientStock) as refused:
        stock_transfer(
            from_store=store,
            to_store=other_store,
            lines=[StockLine(other_product, 3), StockLine(product, 2)],
        )

    assert sorted(refused.value.shortages, key=lambda s: s.sku) == [
        Shortage("MUG-BLUE", requested=3, available=0),
        Shortage("TEE-RED-M", requested=2, available=1),
    ]


def test_transfer_to_the_same_store_is_refused(store, product):
    stock_receive(store=store, product=product, quantity=10)

    with pytest.raises(InvalidStockOperation):
        stock_transfer(from_store=store, to_store=store, lines=[StockLine(product, 1)])

    assert level_of(store, product).version == 1


@pytest.mark.parametrize("quantities", [[], [0], [-1], [600_000, 600_000]])
def test_transfer_refuses_bad_lines(store, other_store, product, quantities):
    stock_receive(store=store, product=product, quantity=10)

    with pytest.raises(InvalidStockOperation):
        stock_transfer(
            from_store=store,
            to_store=other_store,
            lines=[StockLine(product, quantity) for quantity in quantities],
        )

    assert level_of(store, product).version == 1
    assert not StockLevel.objects.filter(store=other_store).exists()
