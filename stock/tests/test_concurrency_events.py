"""Real races on the event numbers (PostgreSQL): threads mixing sales and receipts of
several products in two stores, transfers both ways and multi-line holds, released
together. Each store's events must come out numbered 1..N with no gap and no duplicate,
one per movement with its values, and no change may deadlock."""

import random

import pytest
from django.db.models import Count

from events.models import StockEvent
from stock.exceptions import InsufficientStock
from stock.models import Movement
from stock.services import (
    StockLine,
    reservation_commit,
    reservation_create,
    reservation_release,
    stock_purchase,
    stock_receive,
    stock_transfer,
)
from tests.concurrency import run_together
from tests.factories import ProductFactory, StoreFactory

from .helpers import event_log_problems

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]

THREADS = 12
ROUNDS = 25


def test_concurrent_changes_of_two_stores_number_their_events_without_gap_or_deadlock():
    stores = [StoreFactory(code="berlin-01"), StoreFactory(code="hamburg-01")]
    products = [ProductFactory(sku=f"SKU-{n}") for n in range(3)]
    for store in stores:
        for product in products:
            stock_receive(store=store, product=product, quantity=20)

    def work(seed: int):
        chance = random.Random(seed)

        def run():
            refused = 0
            for _ in range(ROUNDS):
                store, other = chance.sample(stores, 2)
                product = chance.choice(products)
                operation = chance.choice(["purchase", "receive", "transfer", "hold"])
                try:
                    if operation == "purchase":
                        stock_purchase(store=store, product=product, quantity=chance.randint(1, 3))
                    elif operation == "receive":
                        stock_receive(store=store, product=product, quantity=chance.randint(1, 3))
                    elif operation == "transfer":
                        stock_transfer(
                            from_store=store,
                            to_store=other,
                            lines=[StockLine(p, 1) for p in chance.sample(products, 2)],
                        )
                    else:
                        hold = reservation_create(
                            store=store, lines=[StockLine(p, 1) for p in chance.sample(products, 2)]
                        )
                        finish = chance.choice([reservation_commit, reservation_release])
                        finish(reservation=hold)
                except InsufficientStock:
                    refused += 1
            return refused

        return run

    outcomes = run_together([work(seed) for seed in range(THREADS)])

    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)], outcomes
    for store in stores:
        seqs = list(StockEvent.objects.filter(store=store).values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1))
    per_store = dict(
        Movement.objects.values("store_id").annotate(n=Count("id")).values_list("store_id", "n")
    )
    assert per_store == dict(
        StockEvent.objects.values("store_id").annotate(n=Count("id")).values_list("store_id", "n")
    )
    assert sum(per_store.values()) > len(stores) * len(products)  # the threads did change
    assert event_log_problems() == []
