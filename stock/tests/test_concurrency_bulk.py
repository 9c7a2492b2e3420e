"""Bulk jobs racing buyers, checkouts and transfers on PostgreSQL (threads, each on its
own connection): no deadlock, no oversell, and every item's outcome is exact."""

import threading

import pytest
from django.db import connection, connections, transaction
from django.db.models import Sum

from stock.exceptions import InsufficientStock
from stock.models import BulkJob, BulkJobStatus, Movement, MovementKind, StockLevel
from stock.selectors import stock_levels_with_ledger_drift, stock_levels_with_reservation_drift
from stock.services import (
    StockLine,
    bulk_job_run,
    bulk_job_submit,
    reservation_create,
    stock_purchase,
    stock_receive,
    stock_transfer,
)
from tests.app_role import as_owner
from tests.concurrency import run_together
from tests.factories import ProductFactory, StoreFactory
from tests.processes import wait_until

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]

PRODUCTS = 60
UNITS = 40


def test_bulk_adjustments_racing_sales_checkouts_and_transfers_never_deadlock_or_oversell(
    settings,
):
    settings.BULK_BATCH_SIZE = 7  # many batches, each locking in level order
    store, other = StoreFactory(), StoreFactory()
    products = [ProductFactory(sku=f"RACE-{n:03}") for n in range(PRODUCTS)]
    for product in products:
        stock_receive(store=store, product=product, quantity=UNITS)
    jobs = [
        bulk_job_submit(
            store=store,
            mode="adjust",
            reason="damaged",
            error_policy=policy,
            items=[{"sku": p.sku, "delta": -3} for p in reversed(products)],
        )
        for policy in ("skip_failed", "reject_all", "skip_failed")
    ]

    def buyer(offset):
        def run():
            sold = 0
            for n in range(20):
                product = products[(offset * 7 + n) % PRODUCTS]
                try:
                    stock_purchase(store=store, product=product, quantity=2)
                    sold += 2
                except InsufficientStock:
                    pass
            return sold

        return run

    def checkout(offset):
        def run():
            lines = [StockLine(products[(offset + k * 11) % PRODUCTS], 1) for k in range(4)]
            try:
                reservation_create(store=store, lines=list(reversed(lines)))
            except InsufficientStock:
                return 0
            return 4

        return run

    def transfer(offset):
        def run():
            lines = [StockLine(products[(offset * 13 + k) % PRODUCTS], 1) for k in range(3)]
            try:
                stock_transfer(from_store=store, to_store=other, lines=lines)
            except InsufficientStock:
                return 0
            return 3

        return run

    outcomes = run_together(
        [lambda job=job: bulk_job_run(job.pk) for job in jobs]
        + [buyer(n) for n in range(6)]
        + [checkout(n) for n in range(6)]
        + [transfer(n) for n in range(4)]
    )

    assert [o for o in outcomes if isinstance(o, Exception)] == []
    for job in BulkJob.objects.all():
        assert job.status in (BulkJobStatus.DONE, BulkJobStatus.FAILED)
        assert job.processed == PRODUCTS
        if job.status == BulkJobStatus.FAILED:
            assert (job.error_policy, job.applied) == ("reject_all", 0)
        assert job.applied + job.failed == PRODUCTS
        assert {error["code"] for error in job.errors} <= {"insufficient_stock"}
        applied = Movement.objects.filter(reference=f"bulk:{job.pk}", kind=MovementKind.ADJUST)
        assert applied.count() == job.applied
    levels = StockLevel.objects.filter(store=store)
    assert all(0 <= level.reserved <= level.on_hand for level in levels)
    assert not stock_levels_with_ledger_drift().exists()
    assert not stock_levels_with_reservation_drift().exists()
    sold = sum(o for o in outcomes[3:9])
    held = sum(o for o in outcomes[9:15])
    moved = sum(o for o in outcomes[15:])
    damaged = -(
        Movement.objects.filter(kind=MovementKind.ADJUST).aggregate(total=Sum("delta_on_hand"))[
            "total"
        ]
        or 0
    )
    on_hand = levels.aggregate(total=Sum("on_hand"))["total"]
    assert on_hand == PRODUCTS * UNITS - sold - moved - damaged
    assert levels.aggregate(total=Sum("reserved"))["total"] == held


def sessions_waiting_for_a_lock() -> list[str]:
    """As the owner, who sees every session's wait (a role sees only its own)."""
    with as_owner(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.parametrize(
    "case, items, expected",
    [
        ("adjust on the writer's value", [{"delta": -3}], (6, 0, None)),
        ("compare-and-set against it", [{"on_hand": 20, "expected_on_hand": 10}],
         (9, 0, "version_mismatch")),
        ("count below its new hold", [{"on_hand": 5}], (10, 8, "insufficient_stock")),
    ],
)  # fmt: skip
def test_a_write_committed_between_the_batchs_snapshot_and_its_lock_is_built_on(
    store, case, items, expected
):
    """A writer holds the level when the batch statement starts and commits while the
    statement waits for its lock: the statement's guards and compare-and-set see the
    committed row (READ COMMITTED re-reads it once locked), not its snapshot's."""
    product = ProductFactory(sku="RACE-CTE")
    stock_receive(store=store, product=product, quantity=10)
    mode = "adjust" if "delta" in items[0] else "set"
    job = bulk_job_submit(
        store=store, mode=mode, items=[{"sku": product.sku, **item} for item in items]
    )
    writer_may_start, writer_holds, writer_may_commit = (threading.Event() for _ in range(3))

    def writer():
        try:
            assert writer_may_start.wait(20)
            with transaction.atomic():
                if "hold" in case:
                    reservation_create(store=store, lines=[StockLine(product, 8)])
                else:
                    stock_purchase(store=store, product=product, quantity=1)
                writer_holds.set()
                writer_may_commit.wait(20)
        finally:
            connections.close_all()

    def start_the_writer_first(execute, sql, params, many, context):
        if "unnest(" in sql and "FOR UPDATE" in sql:
            writer_may_start.set()
            assert writer_holds.wait(20)
        return execute(sql, params, many, context)

    outcome = {}

    def worker():
        try:
            with connection.execute_wrapper(start_the_writer_first):
                outcome["job"] = bulk_job_run(job.pk)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer), threading.Thread(target=worker)]
    for thread in threads:
        thread.start()
    assert wait_until(
        lambda: any("unnest(" in query for query in sessions_waiting_for_a_lock()),
        timeout=10,
        interval=0.05,
    )
    writer_may_commit.set()
    for thread in threads:
        thread.join(timeout=20)

    assert "error" not in outcome
    job.refresh_from_db()
    level = StockLevel.objects.get(store=store, product=product)
    on_hand, reserved, code = expected
    assert (level.on_hand, level.reserved) == (on_hand, reserved)
    assert [error["code"] for error in job.errors] == ([code] if code else [])
    assert not stock_levels_with_ledger_drift().exists()
