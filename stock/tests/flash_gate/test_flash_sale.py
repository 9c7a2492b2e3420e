"""A flash sale through the gate on the real Redis and PostgreSQL: 2,000 buyers in real
threads for 100 units. Exactly the stocked units are sold, the ledger agrees, and only
the buyers the gate let through reached the database: the refused ones sent it nothing."""

from collections import Counter

import pytest

from stock.flash_gate.services import gate_state, gate_switch
from stock.models import Movement, MovementKind
from stock.services import stock_receive
from stock.tests.helpers import assert_level_matches_ledger, ledger_drift, level_of

from .conftest import redis_state

# The buyers' Redis is a redis-server of the test's own (``own_redis``).
pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.django_db(transaction=True),
]

UNITS = 100
BUYERS = 2000
REDIS_CONNECTIONS = 64


@pytest.fixture
def redis_pool_for_many_threads(own_redis, settings):
    """One process plays every buyer here: its threads wait for one of a bounded number
    of connections to the test's own Redis, as buyers spread over many processes would
    each have one. (redis-py's default pool raises past 100 connections, which the gate
    takes for Redis failing: it fails open, and the buyers go to the database.)"""
    default = settings.CACHES["default"]
    options = {
        **default.get("OPTIONS", {}),
        "CONNECTION_POOL_CLASS": "redis.BlockingConnectionPool",
        "CONNECTION_POOL_KWARGS": {"max_connections": REDIS_CONNECTIONS, "timeout": 60},
    }
    settings.CACHES = {**settings.CACHES, "default": {**default, "OPTIONS": options}}


def test_two_thousand_buyers_for_a_hundred_units_buy_exactly_those_units(
    store, product, buy_together, redis_pool_for_many_threads
):
    stock_receive(store=store, product=product, quantity=UNITS)
    gate_switch(store=store, product=product, enabled=True)

    buyers = buy_together(store, product, BUYERS)

    outcomes = Counter(buyer.outcome for buyer in buyers)
    errors = [repr(buyer.error) for buyer in buyers if buyer.error][:3]
    assert outcomes == {"sold": UNITS, "refused": BUYERS - UNITS}, errors
    level = level_of(store, product)
    assert (level.on_hand, level.reserved) == (0, 0)
    sales = Movement.objects.filter(store=store, product=product, kind=MovementKind.SALE)
    assert sales.count() == UNITS
    assert_level_matches_ledger(store, product)
    assert ledger_drift() == []

    # The database saw a purchase statement from each buyer the gate admitted, and those
    # are the units sold plus the admissions it refused (none here: nothing else changed
    # the level); a buyer the gate refused sent no statement at all.
    state = gate_state(store=store, product=product)
    purchase_statements = sum(buyer.purchase_statements for buyer in buyers)
    assert purchase_statements <= UNITS + state["refunded"]
    assert state["admitted"] == UNITS + state["refunded"]
    refused = [buyer for buyer in buyers if buyer.outcome == "refused"]
    assert [buyer.statements for buyer in refused if buyer.statements] == []
    assert all(buyer.purchase_statements >= 1 for buyer in buyers if buyer.outcome == "sold")

    # Nothing is left held: every admission was settled.
    assert (state["tokens"], redis_state(store, product).held) == (0, 0)
