"""The gate on the real Redis: admissions, refusals without SQL, and the tokens following
every committed change."""

import pytest
from django.db import transaction

from stock.exceptions import InsufficientStock
from stock.flash_gate.services import gates_reconcile
from stock.services import (
    StockLine,
    reservation_create,
    stock_adjust,
    stock_purchase,
    stock_receive,
)

from .conftest import NEEDS_REDIS, available_of, redis_state, tokens_of

pytestmark = [
    NEEDS_REDIS,
    pytest.mark.django_db(transaction=True),
]


def test_switching_on_seeds_as_many_tokens_as_units_available(gated):
    assert tokens_of(*gated) == 10


def test_a_purchase_takes_tokens_and_a_refusal_asks_no_database(gated, record_statements):
    store, product = gated
    stock_purchase(store=store, product=product, quantity=10)
    assert tokens_of(store, product) == 0
    with record_statements() as statements:
        with pytest.raises(InsufficientStock):
            stock_purchase(store=store, product=product, quantity=1)
    assert list(statements) == []


def test_receive_adds_tokens_and_adjust_takes_them(gated):
    store, product = gated
    stock_receive(store=store, product=product, quantity=5)
    assert tokens_of(store, product) == 15
    stock_adjust(store=store, product=product, delta=-7, reason="damaged")
    assert tokens_of(store, product) == 8


def purchase(store, product, units):
    return stock_purchase(store=store, product=product, quantity=units)


def reserve(store, product, units):
    return reservation_create(store=store, lines=[StockLine(product, units)])


class RolledBack(Exception):
    """The caller's own failure, after the change, that rolls its transaction back."""


@pytest.mark.parametrize("change", [purchase, reserve], ids=["purchase", "reservation"])
def test_a_change_rolled_back_with_its_callers_transaction_leaves_every_unit_sellable(
    gated, change
):
    """No settlement runs for a rolled-back transaction: the hold may not outlive it, or
    its units would stay unsellable until the reconciler gave them back much later."""
    store, product = gated
    with pytest.raises(RolledBack):
        with transaction.atomic():
            change(store, product, 3)
            raise RolledBack

    gates_reconcile()
    assert (tokens_of(store, product), redis_state(store, product).held) == (
        available_of(store, product),
        0,
    )


@pytest.mark.parametrize("change", [purchase, reserve], ids=["purchase", "reservation"])
def test_a_change_committed_with_its_callers_transaction_takes_its_tokens(gated, change):
    store, product = gated
    with transaction.atomic():
        change(store, product, 3)

    assert (tokens_of(store, product), redis_state(store, product).held) == (
        available_of(store, product),
        0,
    )
    assert available_of(store, product) == 7
