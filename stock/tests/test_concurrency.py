"""Real races on PostgreSQL: many threads, each on its own connection, released together.

Each test checks the outcome exactly (how many succeeded, final levels, ledger sums), so
a lost update, an oversell or a deadlock fails it.
"""

import random

import pytest
from django.db import OperationalError
from django.db.models import Sum

from stock.exceptions import InsufficientStock
from stock.models import AdjustmentReason, Movement, MovementKind, StockLevel
from stock.selectors import stock_levels_with_ledger_drift
from stock.services import (
    StockLine,
    stock_adjust,
    stock_purchase,
    stock_receive,
    stock_transfer,
)
from tests.concurrency import run_together
from tests.factories import ProductFactory, StoreFactory

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


def test_64_buyers_for_20_units_exactly_20_succeed():
    store, product = StoreFactory(), ProductFactory()
    stock_receive(store=store, product=product, quantity=20)

    outcomes = run_together([lambda: stock_purchase(store=store, product=product, quantity=1)] * 64)

    sold = [o for o in outcomes if isinstance(o, StockLevel)]
    refused = [o for o in outcomes if isinstance(o, InsufficientStock)]
    assert (len(sold), len(refused)) == (20, 44)
    assert sorted(level.on_hand for level in sold) == list(range(20))
    level = StockLevel.objects.get(store=store, product=product)
    assert (level.on_hand, level.version) == (0, 21)
    assert (
        Movement.objects.filter(store=store, product=product, kind=MovementKind.SALE).count() == 20
    )


def test_200_transfers_both_ways_with_lines_in_opposite_orders_never_deadlock():
    """50 threads run 4 transfers each, half A→B with lines (p1, p2), half B→A with (p2, p1)."""
    store_a, store_b = StoreFactory(), StoreFactory()
    p1, p2 = ProductFactory(), ProductFactory()
    for store in (store_a, store_b):
        for product in (p1, p2):
            stock_receive(store=store, product=product, quantity=500)

    def transfers(forward: bool):
        def run():
            done = 0
            for _ in range(4):
                if forward:
                    lines = [StockLine(p1, 1), StockLine(p2, 2)]
                    stock_transfer(from_store=store_a, to_store=store_b, lines=lines)
                else:
                    lines = [StockLine(p2, 2), StockLine(p1, 1)]
                    stock_transfer(from_store=store_b, to_store=store_a, lines=lines)
                done += 1
            return done

        return run

    outcomes = run_together([transfers(forward=i % 2 == 0) for i in range(50)])

    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert errors == []
    assert sum(outcomes) == 200
    assert not any(isinstance(o, OperationalError) for o in outcomes)
    for product, per_store in ((p1, 500), (p2, 500)):
        total = StockLevel.objects.filter(product=product).aggregate(total=Sum("on_hand"))
        assert total["total"] == 2 * per_store
    # 100 transfers each way of the same quantities: both stores end where they began.
    assert set(StockLevel.objects.values_list("on_hand", flat=True)) == {500}
    assert Movement.objects.filter(kind=MovementKind.TRANSFER_OUT).count() == 400
    assert list(stock_levels_with_ledger_drift()) == []


def test_a_mix_of_every_operation_keeps_each_level_equal_to_its_ledger():
    stores = [StoreFactory() for _ in range(2)]
    products = [ProductFactory() for _ in range(3)]
    for store in stores:
        for product in products:
            stock_receive(store=store, product=product, quantity=20)

    def trader(seed: int):
        def run():
            rng = random.Random(seed)
            refused = 0
            for _ in range(12):
                store, other = rng.sample(stores, 2)
                product = rng.choice(products)
                operation = rng.choice(["receive", "adjust", "purchase", "transfer"])
                try:
                    if operation == "receive":
                        stock_receive(store=store, product=product, quantity=rng.randint(1, 5))
                    elif operation == "adjust":
                        stock_adjust(
                            store=store,
                            product=product,
                            delta=rng.choice([-4, -2, -1, 1, 3]),
                            reason=AdjustmentReason.CORRECTION,
                        )
                    elif operation == "purchase":
                        stock_purchase(store=store, product=product, quantity=rng.randint(1, 6))
                    else:
                        lines = [StockLine(p, rng.randint(1, 4)) for p in rng.sample(products, 2)]
                        stock_transfer(from_store=store, to_store=other, lines=lines)
                except InsufficientStock:
                    refused += 1
            return refused

        return run

    outcomes = run_together([trader(seed) for seed in range(32)])

    assert [o for o in outcomes if isinstance(o, Exception)] == []
    assert list(stock_levels_with_ledger_drift()) == []
    for level in StockLevel.objects.all():
        ledger = Movement.objects.filter(store=level.store, product=level.product).aggregate(
            on_hand=Sum("delta_on_hand")
        )
        assert level.on_hand == ledger["on_hand"] >= 0
    # Every operation either wrote its movements or was refused: none half-applied.
    transfer_out = Movement.objects.filter(kind=MovementKind.TRANSFER_OUT).count()
    transfer_in = Movement.objects.filter(kind=MovementKind.TRANSFER_IN).count()
    assert transfer_out == transfer_in
