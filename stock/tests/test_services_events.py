"""Every stock service writes one stock event per movement (and per reorder point it
changes), in the same transaction, numbered per store 1, 2, 3, ... with no gap
(``events.models``), in both modes."""

import inspect
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import stock.services
from events.models import EventType, StockEvent, StoreEventSequence
from events.signals import stock_events_committed
from stock.exceptions import InsufficientStock
from stock.models import BulkErrorPolicy, BulkMode, Movement, Reservation
from stock.services import (
    BulkItem,
    StockLine,
    bulk_job_run,
    bulk_job_submit,
    reservation_commit,
    reservation_create,
    reservation_release,
    reservations_expire_all_due,
    reservations_expire_due,
    stock_adjust,
    stock_apply_bulk,
    stock_purchase,
    stock_receive,
    stock_seed_levels,
    stock_set_count,
    stock_set_reorder_point,
    stock_set_reorder_points,
    stock_transfer,
)
from tests.app_role import as_owner
from tests.factories import ProductFactory, StoreFactory

from .helpers import event_log_problems

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs; numbers are committed

# Public functions of stock.services that write no event: they check, resume or wrap the
# services called below.
WRITE_NO_EVENT = {
    "bulk_check",
    "bulk_jobs_resume",
    "merge_lines",
    "refuse_inactive",
    "adjustment_sign_problem",
}


def seqs(store) -> list[int]:
    return list(StockEvent.objects.filter(store=store).values_list("seq", flat=True))


def types(store) -> list[str]:
    return list(StockEvent.objects.filter(store=store).values_list("type", flat=True))


@pytest.fixture
def heard():
    """The events every ``stock_events_committed`` carried, signal by signal."""
    signals = []

    unnamed = []  # events sent without their store and product: a receiver would query

    def receiver(sender, events, **kwargs):
        signals.append([(event.store_id, event.seq, str(event.type)) for event in events])
        unnamed.extend(
            event
            for event in events
            if not (StockEvent.store.is_cached(event) and StockEvent.product.is_cached(event))
        )

    stock_events_committed.connect(receiver, dispatch_uid="test-heard")
    yield signals
    stock_events_committed.disconnect(dispatch_uid="test-heard")
    assert signals and unnamed == []


def test_every_stock_service_writes_one_event_per_movement_or_reorder_point(
    store, other_store, product, other_product, clerk, settings
):
    settings.BULK_BATCH_SIZE = 2
    called = set()

    def call(service, **kwargs):
        called.add(service.__name__)
        return service(**kwargs)

    call(stock_set_reorder_points, pairs=[(store, product), (store, other_product)],
         reorder_point=3)  # fmt: skip
    call(stock_receive, store=store, product=product, quantity=10, actor=clerk)
    call(stock_receive, store=store, product=other_product, quantity=4)
    call(stock_adjust, store=store, product=product, delta=-1, reason="damaged")
    call(stock_set_count, store=store, product=product, on_hand=8)
    call(stock_purchase, store=store, product=other_product, quantity=2)  # 4 -> 2: low
    hold = call(
        reservation_create,
        store=store,
        lines=[StockLine(product, 2), StockLine(other_product, 2)],  # other: 2 -> 0, out
    )
    call(reservation_release, reservation=hold)  # back in stock
    hold = call(reservation_create, store=store, lines=[StockLine(product, 1)])
    call(reservation_commit, reservation=hold)
    due = call(reservation_create, store=store, lines=[StockLine(product, 1)])
    other_due = reservation_create(store=store, lines=[StockLine(other_product, 1)])
    Reservation.objects.filter(pk__in=[due.pk, other_due.pk]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert call(reservations_expire_due, via="test", limit=1) == 1
    assert call(reservations_expire_all_due, via="test") == 1
    call(
        stock_transfer,
        from_store=store,
        to_store=other_store,
        lines=[StockLine(product, 3), StockLine(other_product, 1)],
    )
    call(
        stock_apply_bulk,
        mode=BulkMode.ADJUST,
        reason="found",
        items=[
            BulkItem(index=i, store_id=s.pk, product_id=p.pk, sku=p.sku, value=1)
            for i, (s, p) in enumerate(
                [(store, product), (store, other_product), (other_store, product)]
            )
        ],
    )
    job = call(
        bulk_job_submit,
        store=other_store,
        mode=BulkMode.SET,
        items=[{"sku": product.sku, "on_hand": 9}, {"sku": other_product.sku, "on_hand": 0}],
        error_policy=BulkErrorPolicy.SKIP_FAILED,
    )
    called.add(bulk_job_run.__name__)
    bulk_job_run(job.pk)  # done already in the embedded mode: then it does nothing
    new_store = StoreFactory(code="munich-01")
    call(stock_seed_levels, stores=[new_store], products=[product, other_product])
    call(stock_set_reorder_point, store=new_store, product=product, reorder_point=2)

    services = {
        name for name in stock.services.__all__ if inspect.isfunction(getattr(stock.services, name))
    }
    assert called == services - WRITE_NO_EVENT  # a new service must be exercised here
    assert event_log_problems() == []
    assert StockEvent.objects.exclude(movement_id=None).count() == Movement.objects.count()
    assert StockEvent.objects.filter(movement_id=None).count() == 3  # the reorder points
    # The purchase took other_product from 4 to 2 (reorder point 3), the first hold
    # from 2 to 0, its release back to 2: every type was judged, each as event_type does.
    assert set(types(store)) == set(EventType)
    assert dict(StoreEventSequence.objects.values_list("store__code", "last_seq")) == {
        store.code: len(seqs(store)),
        other_store.code: len(seqs(other_store)),
        new_store.code: 3,
    }


def test_a_refused_change_takes_no_number(store, product, other_product):
    stock_receive(store=store, product=product, quantity=1)

    with pytest.raises(InsufficientStock):
        stock_purchase(store=store, product=product, quantity=2)
    with pytest.raises(InsufficientStock):
        reservation_create(store=store, lines=[StockLine(product, 1), StockLine(other_product, 1)])
    stock_purchase(store=store, product=product, quantity=1)

    assert seqs(store) == [1, 2]
    assert types(store) == [EventType.BACK_IN_STOCK, EventType.OUT]
    assert event_log_problems() == []


def test_a_rolled_back_change_gives_its_numbers_back(store, other_store, product, heard):
    stock_receive(store=store, product=product, quantity=5)

    with pytest.raises(RuntimeError), transaction.atomic():
        stock_purchase(store=store, product=product, quantity=1)
        stock_transfer(from_store=store, to_store=other_store, lines=[StockLine(product, 2)])
        raise RuntimeError("the caller changes its mind")
    stock_transfer(from_store=store, to_store=other_store, lines=[StockLine(product, 2)])

    assert seqs(store) == [1, 2] and seqs(other_store) == [1]
    assert event_log_problems() == []
    assert heard == [[(store.pk, 1, EventType.BACK_IN_STOCK)],
                     [(store.pk, 2, EventType.CHANGED), (other_store.pk, 1,
                                                          EventType.BACK_IN_STOCK)]]  # fmt: skip


def test_events_are_sent_after_commit_with_the_change_and_a_failing_receiver_fails_nothing(
    store, product, heard
):
    def failing(sender, **kwargs):
        raise RuntimeError("a receiver that breaks")

    stock_events_committed.connect(failing, dispatch_uid="test-failing")
    try:
        with transaction.atomic():
            stock_receive(store=store, product=product, quantity=3)
            stock_receive(store=store, product=product, quantity=2)
            assert heard == []  # not before the commit
    finally:
        stock_events_committed.disconnect(dispatch_uid="test-failing")

    assert heard == [[(store.pk, 1, EventType.BACK_IN_STOCK)], [(store.pk, 2, EventType.CHANGED)]]
    assert seqs(store) == [1, 2]


def test_the_returned_level_carries_its_event_as_written(store, product):
    level = stock_receive(store=store, product=product, quantity=4)

    written = StockEvent.objects.get()
    assert (level.event.pk, level.event.seq, level.event.type, level.event.movement_id) == (
        written.pk,
        written.seq,
        written.type,
        level.movement_id,
    )
    assert (level.event.on_hand, level.event.available, level.event.version) == (4, 4, 1)


def test_a_stock_event_cannot_be_rewritten(store, product):
    """Not even by the tables' owner (the app's role may not ask: ``privileges``)."""
    stock_receive(store=store, product=product, quantity=4)

    with as_owner(), pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        StockEvent.objects.update(on_hand=5)

    assert StockEvent.objects.get().on_hand == 4


def event_statements(queries) -> list[str]:
    table = StockEvent._meta.db_table
    return [query["sql"] for query in queries if f'INSERT INTO "{table}"' in query["sql"]]


@pytest.mark.parametrize("products", [2, 30])
def test_seeding_writes_its_events_with_one_statement_whatever_the_number(products):
    stores = [StoreFactory(code=f"store-{n}") for n in range(3)]
    stock_receive(store=stores[1], product=ProductFactory(sku="EARLIER"), quantity=1)
    catalog = [ProductFactory(sku=f"SKU-{n}") for n in range(products)]

    with CaptureQueriesContext(connection) as queries:
        levels = stock_seed_levels(stores=stores, products=catalog, reorder_point=50)

    assert levels == 3 * products
    assert len(event_statements(queries)) == 1
    assert [seqs(store) for store in stores] == [
        list(range(1, products + 1)),
        list(range(1, products + 2)),  # after the receive's number
        list(range(1, products + 1)),
    ]
    assert event_log_problems() == []


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_a_bulk_transaction_writes_its_events_with_one_statement_after_its_batches(
    store, other_store, settings, batch_size
):
    settings.BULK_BATCH_SIZE = batch_size
    products = [ProductFactory(sku=f"SKU-{n}") for n in range(3)]
    stock_receive(store=other_store, product=products[0], quantity=1)
    items = [
        BulkItem(index=index, store_id=s.pk, product_id=p.pk, sku=p.sku, value=index)
        for index, (s, p) in enumerate((s, p) for s in (store, other_store) for p in products)
    ]

    with CaptureQueriesContext(connection) as queries:
        result = stock_apply_bulk(mode=BulkMode.SET, items=items, reason="correction")

    assert (result.applied, result.errors) == (6, [])
    assert len(event_statements(queries)) == 1
    assert seqs(store) == [1, 2, 3] and seqs(other_store) == [1, 2, 3, 4]
    assert types(store) == [EventType.CHANGED, EventType.BACK_IN_STOCK, EventType.BACK_IN_STOCK]
    assert types(other_store)[1:] == [EventType.CHANGED, EventType.BACK_IN_STOCK,
                                      EventType.BACK_IN_STOCK]  # fmt: skip
    assert event_log_problems() == []


def test_a_bulk_all_or_none_that_fails_writes_no_event(store, product, other_product):
    stock_receive(store=store, product=product, quantity=2)
    stock_receive(store=store, product=other_product, quantity=2)
    items = [
        BulkItem(index=0, store_id=store.pk, product_id=product.pk, sku=product.sku, value=-1),
        BulkItem(index=1, store_id=store.pk, product_id=other_product.pk, sku="x", value=-3),
    ]

    result = stock_apply_bulk(mode=BulkMode.ADJUST, items=items, reason="lost")

    assert (result.applied, len(result.errors)) == (0, 1)
    assert seqs(store) == [1, 2]
    stock_receive(store=store, product=product, quantity=1)
    assert seqs(store) == [1, 2, 3]
