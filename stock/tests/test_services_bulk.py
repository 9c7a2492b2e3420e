"""Bulk jobs in the services: checked up front, applied set-based in batches, one
movement and one audit entry per applied item, all or none or the rest."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditOutboxEntry
from stock.models import BulkJob, BulkJobStatus, MovementKind, StockLevel
from stock.services import (
    BulkRejected,
    StockLine,
    bulk_job_run,
    bulk_job_submit,
    reservation_create,
    stock_receive,
)
from tests.factories import ProductFactory

from .helpers import assert_level_matches_ledger, level_of, movements_of


@pytest.fixture
def products(db):
    return [ProductFactory(sku=f"BULK-{n:03}") for n in range(12)]


def submit(store, mode, items, **options):
    """Submit a job; in the embedded mode (eager Celery) it has run by the time the
    submitting transaction commits, so tests run it themselves when it has not."""
    job = bulk_job_submit(store=store, mode=mode, items=items, **options)
    bulk_job_run(job.pk)
    job.refresh_from_db()
    return job


def test_a_set_job_sets_every_level_creating_missing_ones(store, products, clerk):
    stock_receive(store=store, product=products[0], quantity=5)
    items = [{"sku": product.sku, "on_hand": 10 + n} for n, product in enumerate(products)]

    job = submit(store, "set", items, actor=clerk)

    assert (job.status, job.total, job.applied, job.failed, job.errors) == (
        BulkJobStatus.DONE, 12, 12, 0, []
    )  # fmt: skip
    assert job.finished_at is not None
    for n, product in enumerate(products):
        level = level_of(store, product)
        assert level.on_hand == 10 + n
        assert_level_matches_ledger(store, product)
        last = movements_of(store, product)[-1]
        assert (last.kind, last.reference, last.actor) == (
            MovementKind.SET,
            f"bulk:{job.pk}",
            clerk,
        )
    assert movements_of(store, products[0])[-1].delta_on_hand == 5


def test_each_applied_item_writes_one_movement_and_one_audit_entry(store, products):
    before = AuditOutboxEntry.objects.count()

    submit(store, "adjust", [{"sku": p.sku, "delta": 3} for p in products], reason="found")

    assert sum(len(movements_of(store, p)) for p in products) == len(products)
    entries = AuditOutboxEntry.objects.order_by("pk")[before:]
    assert [entry.action for entry in entries] == ["stock.adjust"] * len(products)
    assert {entry.object_repr for entry in entries} == {f"{p.sku} @ {store.code}" for p in products}


def test_bad_items_are_all_listed_and_nothing_is_queued(store, products):
    products[1].is_active = False
    products[1].save()
    items = [
        {"sku": products[0].sku, "on_hand": 1},
        {"sku": products[1].sku, "on_hand": 1},
        {"sku": "NO-SUCH", "on_hand": 1},
        {"sku": products[2].sku, "on_hand": -1},
        {"sku": products[3].sku, "on_hand": True},
        {"sku": "NUL\x00SKU", "on_hand": 1},
        {"sku": "X" * 65, "on_hand": 1},
        {"sku": products[0].sku, "on_hand": 2},
        "not an object",
    ]

    with pytest.raises(BulkRejected) as rejected:
        bulk_job_submit(store=store, mode="set", items=items)

    assert [(e["index"], e["code"]) for e in rejected.value.errors] == [
        (1, "product_inactive"), (2, "not_found"), (3, "invalid"), (4, "invalid"),
        (5, "invalid"), (6, "invalid"), (7, "duplicate_sku"), (8, "invalid"),
    ]  # fmt: skip
    assert not BulkJob.objects.exists()
    assert not StockLevel.objects.exists()


def test_an_adjustment_whose_sign_does_not_fit_its_reason_is_refused_up_front(store, products):
    with pytest.raises(BulkRejected) as rejected:
        bulk_job_submit(
            store=store,
            mode="adjust",
            reason="damaged",
            items=[{"sku": products[0].sku, "delta": 2}],
        )
    assert rejected.value.errors[0]["detail"].startswith("A damaged adjustment lowers stock")


def test_reject_all_applies_nothing_when_one_item_fails(store, products):
    for product in products[:3]:
        stock_receive(store=store, product=product, quantity=5)
    items = [
        {"sku": products[0].sku, "delta": -2},
        {"sku": products[1].sku, "delta": -9},  # only 5 on hand
        {"sku": products[2].sku, "delta": 4},
    ]

    job = submit(store, "adjust", items, reason="correction")

    assert (job.status, job.applied, job.failed) == (BulkJobStatus.FAILED, 0, 1)
    assert job.errors == [
        {"index": 1, "sku": products[1].sku, "code": "insufficient_stock",
         "detail": "on_hand would be -4, below the 0 reserved (available 5)."}
    ]  # fmt: skip
    assert [level_of(store, p).on_hand for p in products[:3]] == [5, 5, 5]
    assert sum(len(movements_of(store, p)) for p in products[:3]) == 3


def test_skip_failed_applies_the_rest_and_lists_the_failures(store, products):
    for product in products[:3]:
        stock_receive(store=store, product=product, quantity=5)
    reservation_create(store=store, lines=[StockLine(products[2], 4)])
    items = [
        {"sku": products[0].sku, "on_hand": 8, "expected_on_hand": 5},
        {"sku": products[1].sku, "on_hand": 8, "expected_on_hand": 4},  # it is 5
        {"sku": products[2].sku, "on_hand": 3},  # 4 are reserved
        {"sku": products[3].sku, "on_hand": 2},
    ]

    job = submit(store, "set", items, error_policy="skip_failed")

    assert (job.status, job.applied, job.failed) == (BulkJobStatus.DONE, 2, 2)
    assert [(e["index"], e["code"]) for e in job.errors] == [
        (1, "version_mismatch"), (2, "insufficient_stock")
    ]  # fmt: skip
    assert [level_of(store, p).on_hand for p in products[:4]] == [8, 5, 5, 2]
    for product in products[:4]:
        assert_level_matches_ledger(store, product)


def test_progress_counts_every_item_across_batches(store, products, settings):
    settings.BULK_BATCH_SIZE = 5
    job = submit(store, "set", [{"sku": p.sku, "on_hand": 1} for p in products],
                 error_policy="skip_failed")  # fmt: skip
    assert (job.processed, job.applied, job.status) == (12, 12, BulkJobStatus.DONE)


def test_a_finished_job_is_not_run_again(store, products):
    job = submit(store, "adjust", [{"sku": products[0].sku, "delta": 1}])

    assert bulk_job_run(job.pk) is None
    assert level_of(store, products[0]).on_hand == 1


@pytest.mark.postgresql("the one-statement batch is PostgreSQL's")
def test_a_batch_is_one_statement_whatever_its_size(store, products, settings):
    settings.BULK_BATCH_SIZE = 1000
    job = bulk_job_submit(store=store, mode="set",
                          items=[{"sku": p.sku, "on_hand": 3} for p in products])  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        bulk_job_run(job.pk)
    changing = [q["sql"] for q in queries if 'UPDATE "stock_stocklevel"' in q["sql"]]
    assert len(changing) == 1
    assert "FOR UPDATE" in changing[0] and 'INSERT INTO "audit_outbox"' in changing[0]


# --- What changes between the request and the worker ----------------------------------


def test_a_product_deactivated_or_deleted_after_the_request_fails_its_item(store, products):
    job = bulk_job_submit(
        store=store,
        mode="set",
        error_policy="skip_failed",
        items=[{"sku": p.sku, "on_hand": 4} for p in products[:3]],
    )
    products[0].is_active = False
    products[0].save()
    products[1].delete()  # never stocked, so it may go

    bulk_job_run(job.pk)

    job.refresh_from_db()
    assert (job.status, job.applied, job.failed) == (BulkJobStatus.DONE, 1, 2)
    assert [(e["index"], e["code"]) for e in job.errors] == [
        (0, "product_inactive"), (1, "not_found")
    ]  # fmt: skip
    assert level_of(store, products[2]).on_hand == 4
    assert not StockLevel.objects.filter(product=products[0]).exists()


def test_a_store_deactivated_after_the_request_fails_every_item(store, products):
    job = bulk_job_submit(store=store, mode="set", items=[{"sku": products[0].sku, "on_hand": 4}])
    store.is_active = False
    store.save()

    bulk_job_run(job.pk)

    job.refresh_from_db()
    assert (job.status, job.failed, job.errors[0]["code"]) == ("failed", 1, "store_inactive")
    assert level_of(store, products[0]).on_hand == 0


def test_a_run_that_raises_fails_the_job_naming_every_item_it_left(store, products, monkeypatch):
    """A job that cannot be applied ends ``failed`` instead of waiting for a retry that
    would fail the same way; the next job is not held up by it."""
    from stock.services import bulk

    settings_batch = 5
    monkeypatch.setattr("django.conf.settings.BULK_BATCH_SIZE", settings_batch)
    calls = []
    real = bulk.apply_bulk_batch

    def second_batch_raises(rows, **options):
        calls.append(len(rows))
        if len(calls) == 2:
            raise ValueError("cannot apply")
        return real(rows, **options)

    monkeypatch.setattr(bulk, "apply_bulk_batch", second_batch_raises)
    job = bulk_job_submit(store=store, mode="set", error_policy="skip_failed",
                          items=[{"sku": p.sku, "on_hand": 2} for p in products])  # fmt: skip

    assert bulk_job_run(job.pk).status == BulkJobStatus.FAILED

    job.refresh_from_db()
    assert (job.processed, job.applied, job.failed) == (12, 5, 7)
    assert {e["code"] for e in job.errors} == {"job_failed"}
    assert sorted(e["index"] for e in job.errors) == sorted(
        set(range(12)) - {i for i, p in enumerate(products) if level_of(store, p).on_hand == 2}
    )
    monkeypatch.setattr(bulk, "apply_bulk_batch", real)
    assert submit(store, "adjust", [{"sku": products[0].sku, "delta": 1}]).status == "done"


@pytest.mark.parametrize(
    "item",
    [{"sku": "\ud800", "on_hand": 1}, {"sku": "TEE", "on_hand": 1, "\ud800": 2}],
    ids=["lone surrogate in the sku", "lone surrogate in a field name"],
)
def test_text_no_database_can_store_is_a_listed_bad_item(store, item):
    with pytest.raises(BulkRejected) as rejected:
        bulk_job_submit(store=store, mode="set", items=[item])
    [error] = rejected.value.errors
    assert error["code"] == "invalid"
    error["detail"].encode("utf-8")  # the answer itself can be sent


def test_the_workers_audit_entries_name_the_request_that_submitted_the_job(store, products):
    """As the single-item endpoints record theirs: the worker runs elsewhere, later."""
    from audit.context import origin

    before = AuditOutboxEntry.objects.count()
    with origin(ip="203.0.113.9", request_id="bulk-request-1"):
        job = bulk_job_submit(
            store=store, mode="set", items=[{"sku": products[0].sku, "on_hand": 3}]
        )
    bulk_job_run(job.pk)

    [entry] = AuditOutboxEntry.objects.order_by("pk")[before:]
    assert (entry.action, entry.ip, entry.request_id) == (
        "stock.set", "203.0.113.9", "bulk-request-1"
    )  # fmt: skip
