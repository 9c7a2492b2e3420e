"""A bulk job survives its worker being killed: the next worker finishes it, and no item
is applied twice.

The deployment's own ``bin/run worker`` applies the job on the test database. The test
holds a row lock on one level in the middle of the job's apply order, so the worker
commits the batches before it and then waits; it is SIGKILLed there. Its open batch dies
with its connection. A second worker, started later, finds the job through its start-up
sweep (the job's heartbeat is older than BULK_JOB_STALE_SECONDS) and resumes after the
last committed batch.
"""

import os
import signal
import threading
import uuid

import pytest
from django.db import connection, connections, transaction
from django.db.models import Count

from stock.models import BulkJob, BulkJobStatus, Movement, StockLevel
from stock.selectors import stock_levels_with_ledger_drift
from stock.services import bulk_job_submit, stock_seed_levels
from tests.app_role import as_owner
from tests.factories import ProductFactory, StoreFactory
from tests.processes import read, wait_until

pytestmark = [
    pytest.mark.services,
    pytest.mark.postgresql,
    pytest.mark.django_db(transaction=True),
]

ITEMS = 400
BATCH = 25
WORKER = {"BULK_BATCH_SIZE": str(BATCH), "BULK_JOB_STALE_SECONDS": "1"}


def lock_level_until(level_id: int, released: threading.Event, locked: threading.Event):
    """In a thread of its own (its own connection): lock a level until ``released``."""
    try:
        with transaction.atomic():
            StockLevel.objects.select_for_update().get(pk=level_id)
            locked.set()
            released.wait(timeout=60)
    finally:
        connections.close_all()


def test_a_job_whose_worker_is_killed_is_finished_by_the_next_with_no_item_applied_twice(start):
    store = StoreFactory()
    products = [ProductFactory(sku=f"KILL-{n:04}") for n in range(ITEMS)]
    stock_seed_levels(stores=[store], products=products)
    level_ids = sorted(StockLevel.objects.filter(store=store).values_list("pk", flat=True))
    blocker = level_ids[len(level_ids) // 2]  # in batch 8 of 16, by level id
    released, locked = threading.Event(), threading.Event()
    holder = threading.Thread(target=lock_level_until, args=(blocker, released, locked))
    holder.start()
    try:
        assert locked.wait(timeout=10)
        job = bulk_job_submit(
            store=store,
            mode="set",
            error_policy="skip_failed",
            items=[{"sku": product.sku, "on_hand": 1000 + n} for n, product in enumerate(products)],
        )
        hostname = f"bulk-kill-{uuid.uuid4().hex[:8]}@%h"
        first = start("worker", "--hostname", hostname, "--concurrency", "1", **WORKER)

        def progress() -> int:
            return BulkJob.objects.get(pk=job.pk).processed

        # The worker commits the batches before the locked level and waits in the next.
        assert wait_until(lambda: progress() == len(level_ids) // 2, timeout=30, interval=0.1), (
            progress(),
            read(first)[-3000:],
        )
        assert wait_until(lambda: waiting_on_a_lock(), timeout=10, interval=0.1)
        worker_process = start.processes[-1]
        os.killpg(worker_process.pid, signal.SIGKILL)
        worker_process.wait(timeout=10)
        killed_at = progress()
    finally:
        released.set()
        holder.join(timeout=30)
    # The killed worker's backend ends its statement once the lock is free, finds its
    # client gone and rolls the batch back.
    assert wait_until(lambda: not waiting_on_a_lock(), timeout=20, interval=0.1)
    assert 0 < killed_at < ITEMS
    assert Movement.objects.filter(reference=f"bulk:{job.pk}").count() == killed_at

    second = start("worker", "--hostname", f"bulk-resume-{uuid.uuid4().hex[:8]}@%h", **WORKER)
    assert wait_until(
        lambda: BulkJob.objects.get(pk=job.pk).status == BulkJobStatus.DONE,
        timeout=60,
        interval=0.2,
    ), read(second)[-3000:]

    job.refresh_from_db()
    assert (job.processed, job.applied, job.failed, job.errors) == (ITEMS, ITEMS, 0, [])
    on_hand = dict(StockLevel.objects.filter(store=store).values_list("product__sku", "on_hand"))
    assert on_hand == {product.sku: 1000 + n for n, product in enumerate(products)}
    per_level = (
        Movement.objects.filter(reference=f"bulk:{job.pk}")
        .values("product")
        .annotate(movements=Count("pk"))
    )
    assert sorted(row["movements"] for row in per_level) == [1] * ITEMS
    assert not stock_levels_with_ledger_drift().exists()


def waiting_on_a_lock() -> bool:
    """Some other session of the test database waits for a row lock (the worker's
    batch, behind the test's lock). As the owner, who sees every session's wait (a role
    sees only its own)."""
    with as_owner(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0] > 0
