"""A change of a reorder point writes a stock event: no unit moves, but the level may
become low, or stop being low, and webhooks, the events API and the dashboard must hear
of it. One event per level whose value changed, numbered with the store's other events
in the same transaction, after the level locks (``stock.services.locks``)."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from events.models import EventType, StockEvent, StoreEventSequence
from events.signals import stock_events_committed
from stock.exceptions import InvalidStockOperation
from stock.models import Movement, StockLevel
from stock.services import (
    StockLine,
    reservation_create,
    stock_purchase,
    stock_receive,
    stock_set_reorder_point,
    stock_set_reorder_points,
)
from tests.concurrency import run_together
from tests.factories import ProductFactory

from .helpers import event_log_problems

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs; numbers are committed


def log(store) -> list[tuple]:
    return list(StockEvent.objects.filter(store=store).values_list("seq", "type", "movement_id"))


def last_event(store) -> StockEvent:
    return StockEvent.objects.filter(store=store).latest("seq")


@pytest.fixture
def heard_events():
    """The (store id, seq) of the events each ``stock_events_committed`` carried."""
    signals = []

    def receiver(sender, events, **kwargs):
        signals.append([(event.store_id, event.seq) for event in events])

    stock_events_committed.connect(receiver, dispatch_uid="test-heard-events")
    yield signals
    stock_events_committed.disconnect(dispatch_uid="test-heard-events")


# --- What it writes ---------------------------------------------------------------------


def test_raising_the_reorder_point_above_what_is_available_writes_a_low_event(store, product):
    stock_receive(store=store, product=product, quantity=5)
    reservation_create(store=store, lines=[StockLine(product, 1)])  # available 4

    level = stock_set_reorder_point(store=store, product=product, reorder_point=4)

    event = last_event(store)
    assert (event.seq, event.type, event.movement_id) == (3, EventType.LOW, None)
    assert (event.on_hand, event.reserved, event.available, event.reorder_point) == (5, 1, 4, 4)
    assert event.version == level.version == 2  # the level's, not bumped
    assert (level.event.pk, level.event.seq) == (event.pk, event.seq)
    assert Movement.objects.count() == 2  # no movement for it
    assert event_log_problems() == []


@pytest.mark.parametrize(
    "available, before, after, expected",
    [
        (4, 0, 4, EventType.LOW),  # at the new point: low now
        (4, 3, 10, EventType.LOW),
        (4, 4, 10, EventType.CHANGED),  # low before already
        (4, 4, 3, EventType.CHANGED),  # no longer low
        (4, 0, 3, EventType.CHANGED),  # still above it
        (0, 0, 5, EventType.CHANGED),  # out of stock stays out, and is no news
        (0, 5, 0, EventType.CHANGED),
    ],
)
def test_its_type_says_whether_the_change_made_the_level_low(
    store, product, available, before, after, expected
):
    if available:
        stock_receive(store=store, product=product, quantity=available)
    stock_set_reorder_point(store=store, product=product, reorder_point=before)
    first = StockEvent.objects.filter(store=store).count()

    stock_set_reorder_point(store=store, product=product, reorder_point=after)

    assert log(store)[first:] == [(first + 1, expected, None)]
    assert last_event(store).reorder_point == after
    assert event_log_problems() == []


def test_the_same_value_again_writes_no_event_and_takes_no_number(store, product):
    stock_receive(store=store, product=product, quantity=5)
    stock_set_reorder_point(store=store, product=product, reorder_point=3)

    level = stock_set_reorder_point(store=store, product=product, reorder_point=3)

    assert not hasattr(level, "event")
    assert [seq for seq, *_ in log(store)] == [1, 2]
    assert StoreEventSequence.objects.get(store=store).last_seq == 2


def test_a_level_that_did_not_exist_gets_its_event_at_version_0(store, product):
    stock_set_reorder_point(store=store, product=product, reorder_point=2)

    event = StockEvent.objects.get(store=store)
    assert (event.seq, event.type, event.version, event.available) == (
        1, EventType.CHANGED, 0, 0
    )  # fmt: skip


def test_many_levels_get_an_event_each_in_level_order_except_the_unchanged(
    store, other_store, product, other_product, heard_events
):
    third = ProductFactory(sku="CAP")
    for level_store, level_product in [(store, product), (store, other_product), (store, third),
                                       (other_store, product)]:  # fmt: skip
        stock_receive(store=level_store, product=level_product, quantity=3)
    stock_set_reorder_point(store=store, product=other_product, reorder_point=5)
    heard_events.clear()
    pairs = [(other_store, product), (store, third), (store, other_product), (store, product)]

    levels = stock_set_reorder_points(pairs=pairs, reorder_point=5)

    assert [getattr(level, "event", None) is None for level in levels] == [
        False, True, False, False  # in primary-key order: TEE, MUG (at 5 already), CAP, ...
    ]  # fmt: skip
    assert log(store)[4:] == [(5, EventType.LOW, None), (6, EventType.LOW, None)]
    assert [event.product_id for event in StockEvent.objects.filter(store=store, seq__gt=4)] == [
        product.pk, third.pk
    ]  # fmt: skip
    assert log(other_store)[1:] == [(2, EventType.LOW, None)]
    assert heard_events == [[(store.pk, 5), (store.pk, 6), (other_store.pk, 2)]]
    assert event_log_problems() == []


def test_a_refused_value_writes_nothing(store, product):
    stock_receive(store=store, product=product, quantity=5)

    with pytest.raises(InvalidStockOperation):
        stock_set_reorder_point(store=store, product=product, reorder_point=-1)

    assert [seq for seq, *_ in log(store)] == [1]


def test_a_rolled_back_change_gives_its_number_back(store, product, heard_events):
    stock_receive(store=store, product=product, quantity=5)
    heard_events.clear()

    with pytest.raises(RuntimeError), transaction.atomic():
        stock_set_reorder_point(store=store, product=product, reorder_point=9)
        raise RuntimeError("the caller changes its mind")
    stock_purchase(store=store, product=product, quantity=1)

    assert [(seq, type_) for seq, type_, _ in log(store)] == [
        (1, EventType.BACK_IN_STOCK),
        (2, EventType.CHANGED),  # the sale's
    ]
    assert StockLevel.objects.get().reorder_point == 0
    assert heard_events == [[(store.pk, 2)]]


def test_the_events_go_out_after_the_commit_with_the_level_s_names(store, product, heard_events):
    stock_receive(store=store, product=product, quantity=5)
    heard_events.clear()

    with transaction.atomic():
        stock_set_reorder_point(store=store, product=product, reorder_point=5)
        assert heard_events == []

    assert heard_events == [[(store.pk, 2)]]


@pytest.mark.postgresql("SQLite has no row locks: Django leaves out FOR UPDATE there")
def test_the_store_s_number_is_taken_after_the_level_locks(store, product, other_product):
    for level_product in (product, other_product):
        stock_receive(store=store, product=level_product, quantity=5)
    sequences = StoreEventSequence._meta.db_table

    with CaptureQueriesContext(connection) as queries:
        stock_set_reorder_points(pairs=[(store, product), (store, other_product)],
                                 reorder_point=7)  # fmt: skip

    statements = [query["sql"] for query in queries]
    locks = [n for n, sql in enumerate(statements) if "FOR UPDATE" in sql]
    numbers = [n for n, sql in enumerate(statements) if f'INTO "{sequences}"' in sql]
    assert len(locks) == 1 and len(numbers) == 1  # one round each, whatever the count
    assert locks[0] < numbers[0]


@pytest.mark.postgresql("row locks: SQLite runs one writer at a time")
def test_reorder_points_and_sales_of_one_level_race_without_deadlock_or_gap(store, product):
    stock_receive(store=store, product=product, quantity=1000)
    other = ProductFactory(sku="OTHER")
    stock_receive(store=store, product=other, quantity=1000)

    def setter(offset):
        def run():
            for n in range(20):
                stock_set_reorder_points(
                    pairs=[(store, other), (store, product)], reorder_point=offset + n
                )

        return run

    def seller(level_product):
        def run():
            for _ in range(20):
                stock_purchase(store=store, product=level_product, quantity=1)

        return run

    outcomes = run_together(
        [setter(1), setter(100), seller(product), seller(other), seller(product)]
    )

    assert outcomes == [None] * 5
    assert event_log_problems() == []
    assert StockEvent.objects.filter(movement_id=None).count() == 2 * 2 * 20
