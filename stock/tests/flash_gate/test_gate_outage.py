"""Redis killed in the middle of a flash sale, on a redis-server of the test's own.

Buyers keep arriving while it dies: the ones the gate admitted before go on to the
database, the ones after find the gate failing open and go to the database, which sells
exactly what it has. No buyer sees an unexpected error, every sale that answered
success is in the ledger, nothing is oversold. Redis back, empty: the reconciler
reseeds the tokens from the database and the gate admits and refuses again.
"""

from collections import Counter

import pytest

from stock.exceptions import InsufficientStock
from stock.flash_gate.services import gate_state, gate_switch, gates_reconcile_safely
from stock.models import Movement, MovementKind
from stock.services import stock_purchase, stock_receive
from stock.tests.helpers import assert_level_matches_ledger, ledger_drift, level_of
from tests.processes import wait_until

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]

UNITS = 100
THREADS = 40
ATTEMPTS = 6  # per thread: 240 purchases for 100 units, arriving before and after the kill
KILLED_AFTER = 30  # sales


def test_killing_redis_mid_sale_loses_no_sale_and_oversells_nothing(
    own_redis, store, product, buy_together, record_statements
):
    stock_receive(store=store, product=product, quantity=UNITS)
    gate_switch(store=store, product=product, enabled=True)
    assert gate_state(store=store, product=product)["tokens"] == UNITS

    buyers = buy_together(
        store, product, THREADS, attempts=ATTEMPTS, during=own_redis.stop, when_sold=KILLED_AFTER
    )

    outcomes = Counter(buyer.outcome for buyer in buyers)
    errors = [repr(buyer.error) for buyer in buyers if buyer.error][:3]
    assert outcomes == {"sold": UNITS, "refused": THREADS * ATTEMPTS - UNITS}, errors
    sales = Movement.objects.filter(store=store, product=product, kind=MovementKind.SALE)
    assert sorted(buyer.movement_id for buyer in buyers if buyer.outcome == "sold") == sorted(
        sales.values_list("pk", flat=True)
    )
    level = level_of(store, product)
    assert (level.on_hand, level.reserved) == (0, 0)
    assert_level_matches_ledger(store, product)
    assert ledger_drift() == []
    # After the kill the database judged: buyers it refused had asked it.
    assert any(buyer.outcome == "refused" and buyer.statements for buyer in buyers)

    # Redis comes back empty: until a reconcile has reseeded the level, the gate fails
    # open; after it, the tokens are what the database has available.
    own_redis.start()
    assert gate_state(store=store, product=product)["tokens"] is None
    assert wait_until(lambda: gates_reconcile_safely() is not None, timeout=10, interval=0.05)
    assert gate_state(store=store, product=product)["tokens"] == level_of(store, product).available

    stock_receive(store=store, product=product, quantity=3)
    assert gate_state(store=store, product=product)["tokens"] == 3
    for _ in range(3):
        stock_purchase(store=store, product=product, quantity=1)
    with record_statements() as statements:
        with pytest.raises(InsufficientStock):
            stock_purchase(store=store, product=product, quantity=1)
    assert list(statements) == []  # the gate refused, as before the outage
    assert level_of(store, product).on_hand == 0
    assert_level_matches_ledger(store, product)
