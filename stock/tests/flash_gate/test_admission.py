"""The gate on the real Redis: admissions, refusals without SQL, and the tokens following
every committed change."""

import pytest

from stock.exceptions import InsufficientStock
from stock.services import stock_adjust, stock_purchase, stock_receive

from .conftest import NEEDS_REDIS, tokens_of

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
