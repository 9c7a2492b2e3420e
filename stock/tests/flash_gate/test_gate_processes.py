"""The gate across processes: each one remembers for a moment that a level sold out, and
a process may not know yet that a level is gated. Another process here is a real
``bin/run`` child on the test database and the test's Redis."""

import time

import pytest

from stock.exceptions import InsufficientStock
from stock.flash_gate.process import view
from stock.flash_gate.services import gate_state, gate_switch, gates_reconcile
from stock.flash_gate.tokens import member
from stock.services import stock_purchase, stock_receive
from tests.processes import wait_until

from .conftest import (
    NEEDS_REDIS,
    as_a_process_that_has_not_read_the_registry,
    available_of,
    tokens_of,
)

pytestmark = [
    NEEDS_REDIS,
    pytest.mark.postgresql,
    pytest.mark.django_db(transaction=True),
]


def buys_one(store, product) -> bool:
    try:
        stock_purchase(store=store, product=product, quantity=1)
    except InsufficientStock:
        return False
    return True


def gate_one_unit(store, product) -> None:
    stock_receive(store=store, product=product, quantity=1)
    gate_switch(store=store, product=product, enabled=True)


def sell_the_last_unit(store, product, settings) -> None:
    """This process sells the last unit: it now refuses buyers of the level on its own,
    for FLASH_GATE_SOLD_OUT_SECONDS from now."""
    before = time.monotonic()
    stock_purchase(store=store, product=product, quantity=1)
    until = view.sold_out[member(store.pk, product.pk)]
    assert before < until <= time.monotonic() + settings.FLASH_GATE_SOLD_OUT_SECONDS


def test_a_process_that_saw_a_level_sold_out_refuses_without_redis_or_sql_until_it_hears_a_refill(
    store, product, settings, redis_round_trips, record_statements
):
    gate_one_unit(store, product)
    sell_the_last_unit(store, product, settings)
    with redis_round_trips() as trips, record_statements() as statements:
        assert not buys_one(store, product)
    assert (trips.commands(), list(statements)) == ([], [])

    stock_receive(store=store, product=product, quantity=2)  # heard here: the flag goes
    assert buys_one(store, product)
    assert tokens_of(store, product) == available_of(store, product) == 1


def test_a_reconcile_reopens_a_level_this_process_saw_sold_out(store, product, settings):
    gate_one_unit(store, product)
    sell_the_last_unit(store, product, settings)
    # Units the gate did not hear of (received by a process that had not read the
    # registry yet): the reconcile seeds them, and this process sells them at once.
    with as_a_process_that_has_not_read_the_registry():
        stock_receive(store=store, product=product, quantity=3)
    assert tokens_of(store, product) == 0
    gates_reconcile()
    assert tokens_of(store, product) == available_of(store, product) == 3
    assert buys_one(store, product)


def test_a_refill_by_another_process_reopens_the_gate_within_a_second(
    store, product, settings, other_process
):
    gate_one_unit(store, product)
    other = other_process(store, product)  # it knows the level is gated
    sell_the_last_unit(store, product, settings)
    assert not buys_one(store, product)

    other.send("receive 5")
    assert tokens_of(store, product) == 5
    # This process did not hear of it; its flag runs out within the contract's second.
    assert settings.FLASH_GATE_SOLD_OUT_SECONDS < 1
    assert wait_until(lambda: buys_one(store, product), timeout=1, interval=0.02)
    assert tokens_of(store, product) == available_of(store, product) == 4


def test_units_taken_by_a_process_that_did_not_know_of_the_gate_are_counted_by_the_second_reseed(
    store, product, settings, other_process, start
):
    stock_receive(store=store, product=product, quantity=10)
    # It reads the registry now, before the gate is on, and again only in a minute.
    other = other_process(store, product, FLASH_GATE_REGISTRY_SECONDS="60")
    # A worker runs the reseed gate_switch schedules for such processes.
    start("worker", CACHE_KEY_PREFIX=settings.CACHES["default"]["KEY_PREFIX"])

    gate_switch(store=store, product=product, enabled=True)
    assert tokens_of(store, product) == 10
    other.send("adjust -4")  # not told to the gate: more tokens than units for now
    assert (tokens_of(store, product), available_of(store, product)) == (10, 6)

    # The second reseed counts what that process took: the tokens are the units again.
    assert wait_until(lambda: tokens_of(store, product) == 6, timeout=30, interval=0.1)
    assert available_of(store, product) == 6
    assert sum(buys_one(store, product) for _ in range(7)) == 6
    assert gate_state(store=store, product=product)["refunded"] == 0
