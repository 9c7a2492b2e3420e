"""Random sequences of service calls, valid and invalid, checked against a model.

Hypothesis drives receive, adjust, set_count, purchase and transfer with quantities that
are sometimes out of range, versions that are sometimes stale and requests that are
sometimes larger than the stock. After every step each level must equal the model, the
invariants must hold, and the ledger must add up.
"""

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from stock.exceptions import InsufficientStock, InvalidStockOperation, VersionMismatch
from stock.models import AdjustmentReason, StockLevel
from stock.selectors import stock_levels_with_ledger_drift
from stock.services import (
    MAX_QUANTITY,
    StockLine,
    stock_adjust,
    stock_purchase,
    stock_receive,
    stock_set_count,
    stock_transfer,
)
from tests.factories import ProductFactory, StoreFactory

STORES = st.integers(0, 1)
PRODUCTS = st.integers(0, 1)
QUANTITIES = st.one_of(st.integers(1, 30), st.sampled_from([0, -1, MAX_QUANTITY + 1]))
DELTAS = st.one_of(st.integers(-30, 30), st.sampled_from([MAX_QUANTITY + 1]))


class StockServicesMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.stores = [StoreFactory(), StoreFactory()]
        self.products = [ProductFactory(), ProductFactory()]
        # (store index, product index) -> [on_hand, version]; absent means a zero level.
        self.model: dict[tuple[int, int], list[int]] = {}

    def expected(self, s, p) -> list[int]:
        return self.model.setdefault((s, p), [0, 0])

    def record(self, s, p, delta):
        state = self.expected(s, p)
        state[0] += delta
        state[1] += 1

    @staticmethod
    def valid_quantity(quantity) -> bool:
        return 1 <= quantity <= MAX_QUANTITY

    @rule(s=STORES, p=PRODUCTS, quantity=QUANTITIES)
    def receive(self, s, p, quantity):
        call = lambda: stock_receive(  # noqa: E731
            store=self.stores[s], product=self.products[p], quantity=quantity
        )
        if not self.valid_quantity(quantity):
            with pytest.raises(InvalidStockOperation):
                call()
            return
        call()
        self.record(s, p, quantity)

    @rule(s=STORES, p=PRODUCTS, delta=DELTAS, reason=st.sampled_from(AdjustmentReason.values))
    def adjust(self, s, p, delta, reason):
        call = lambda: stock_adjust(  # noqa: E731
            store=self.stores[s], product=self.products[p], delta=delta, reason=reason
        )
        if delta == 0 or abs(delta) > MAX_QUANTITY:
            with pytest.raises(InvalidStockOperation):
                call()
        elif self.expected(s, p)[0] + delta < 0:
            with pytest.raises(InsufficientStock):
                call()
        else:
            call()
            self.record(s, p, delta)

    @rule(
        s=STORES,
        p=PRODUCTS,
        on_hand=st.integers(-1, 40),
        version_offset=st.sampled_from([None, 0, 0, -1, 1]),
    )
    def set_count(self, s, p, on_hand, version_offset):
        on_hand_now, version_now = self.expected(s, p)
        expected_version = None if version_offset is None else version_now + version_offset
        call = lambda: stock_set_count(  # noqa: E731
            store=self.stores[s],
            product=self.products[p],
            on_hand=on_hand,
            expected_version=expected_version,
        )
        if on_hand < 0 or (expected_version is not None and expected_version < 0):
            with pytest.raises(InvalidStockOperation):
                call()
        elif expected_version is not None and expected_version != version_now:
            with pytest.raises(VersionMismatch):
                call()
        else:
            call()
            self.record(s, p, on_hand - on_hand_now)

    @rule(s=STORES, p=PRODUCTS, quantity=QUANTITIES)
    def purchase(self, s, p, quantity):
        call = lambda: stock_purchase(  # noqa: E731
            store=self.stores[s], product=self.products[p], quantity=quantity
        )
        if not self.valid_quantity(quantity):
            with pytest.raises(InvalidStockOperation):
                call()
        elif quantity > self.expected(s, p)[0]:
            with pytest.raises(InsufficientStock):
                call()
        else:
            call()
            self.record(s, p, -quantity)

    @rule(source=STORES, lines=st.lists(st.tuples(PRODUCTS, QUANTITIES), min_size=1, max_size=3))
    def transfer(self, source, lines):
        target = 1 - source
        call = lambda: stock_transfer(  # noqa: E731
            from_store=self.stores[source],
            to_store=self.stores[target],
            lines=[StockLine(self.products[p], quantity) for p, quantity in lines],
        )
        wanted: dict[int, int] = {}
        for p, quantity in lines:
            wanted[p] = wanted.get(p, 0) + quantity
        if not all(self.valid_quantity(q) for _, q in lines) or not all(
            self.valid_quantity(q) for q in wanted.values()
        ):
            with pytest.raises(InvalidStockOperation):
                call()
        elif any(q > self.expected(source, p)[0] for p, q in wanted.items()):
            with pytest.raises(InsufficientStock):
                call()
        else:
            call()
            for p, quantity in wanted.items():
                self.record(source, p, -quantity)
                self.record(target, p, quantity)

    @invariant()
    def levels_match_the_model_and_the_ledger(self):
        levels = StockLevel.objects.filter(store__in=self.stores)
        actual = {
            (self.stores.index(level.store), self.products.index(level.product)): [
                level.on_hand,
                level.version,
            ]
            for level in levels.select_related("store", "product")
        }
        expected = {key: state for key, state in self.model.items() if state != [0, 0]}
        assert {k: v for k, v in actual.items() if v != [0, 0]} == expected
        for level in levels:
            assert 0 <= level.reserved <= level.on_hand
            assert level.available == level.on_hand - level.reserved
        assert not stock_levels_with_ledger_drift().filter(store__in=self.stores).exists()


@pytest.mark.django_db
def test_random_service_sequences_keep_every_invariant():
    run_state_machine_as_test(
        StockServicesMachine,
        settings=settings(
            max_examples=60,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
