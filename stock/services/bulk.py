"""Bulk stock changes: many set or adjust items, applied set-based in batches.

Two ways in, one way of applying:

- ``bulk_job_submit`` (the API): every item is checked in the request (``bulk_check``:
  unknown or inactive SKU, bad numbers, a SKU twice), the job is stored and a worker
  applies it (``bulk_job_run``), batch after batch, recording its progress with each.
- ``stock_apply_bulk`` (``import_stock``, the admin's CSV upload): the same batches in the
  caller's transaction, all items or none.

A batch of up to ``BULK_BATCH_SIZE`` items is ONE statement on PostgreSQL
(``sql.apply_bulk_batch``): it locks the batch's levels in primary-key order,
applies the guards and the ``expected_on_hand`` compare-and-set in SQL, updates the
levels, and writes their movements and audit outbox entries with an INSERT ... SELECT
each. Items are applied in stock level id order, so batches lock in the same order as
every other multi-row change. The stock events of all the batches of one transaction are
numbered and written by one more statement after the last batch (``event_log``).
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit.context import current_origin, origin
from catalog.models import Product
from inventory_site.cache_outage import CircuitOpen, broker_circuit
from stores.models import Store

from ..exceptions import BulkRejected, InvalidStockOperation, ProductInactive, StoreInactive
from ..metrics import counted
from ..models import (
    AdjustmentReason,
    BulkErrorPolicy,
    BulkJob,
    BulkJobStatus,
    BulkMode,
    MovementKind,
    StockLevel,
)
from .arrays import id_rows
from .event_log import write_events
from .locks import ensure_stock_levels_by_ids, stock_level_ids
from .rules import MAX_QUANTITY, adjustment_sign_problem, is_int, refuse_inactive, user_of
from .sql import BulkOutcome, announce, apply_bulk_batch

logger = logging.getLogger(__name__)

MAX_BULK_ITEMS = 10_000
SKU_LENGTH = Product._meta.get_field("sku").max_length
KINDS = {BulkMode.SET: MovementKind.SET, BulkMode.ADJUST: MovementKind.ADJUST}


@dataclass(frozen=True)
class BulkItem:
    """One checked item: ``value`` is the new on_hand (set) or the delta (adjust)."""

    index: int
    store_id: int
    product_id: int
    sku: str
    value: int
    expected_on_hand: int | None = None
    expected_version: int | None = None


@dataclass
class BulkResult:
    """What applying items did: the failures (``{"index", "sku", "detail", "code"}``),
    and how many items were applied or left as they were (a count equal to on_hand,
    when unchanged counts are not recorded)."""

    applied: int = 0
    unchanged: int = 0
    errors: list[dict] = field(default_factory=list)


def item_error(index: int, sku, detail: str, code: str = "invalid") -> dict:
    return {"index": index, "sku": sku, "detail": detail, "code": code}


# --- Checking, in the request -------------------------------------------------------


def bulk_check(*, store: Store, mode: str, items: list, reason: str = "") -> list[BulkItem]:
    """The items of a bulk request, checked one by one without the database lock;
    raises BulkRejected listing every bad item (index, sku, detail, code).

    ``items`` are dicts as the API receives them: ``{"sku", "on_hand" | "delta",
    "expected_on_hand"?}``. Unknown SKUs, inactive products, numbers that are not whole
    numbers in range, a delta whose sign does not fit ``reason`` and a SKU named twice
    are all refused here, together.
    """
    if mode not in BulkMode.values:
        raise InvalidStockOperation(f"mode must be one of: {', '.join(BulkMode.values)}.")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BULK_ITEMS:
        raise InvalidStockOperation(f"items must be a list of 1 to {MAX_BULK_ITEMS:,} items.")
    refuse_inactive(store, [])
    value_field = "on_hand" if mode == BulkMode.SET else "delta"
    problems = [
        _item_problem(item, mode, value_field, reason)
        if isinstance(item, dict)
        else "Each item must be an object."
        for item in items
    ]
    skus = {item["sku"] for item, problem in zip(items, problems, strict=True) if not problem}
    products = {  # sku -> (id, is_active); no model instance per SKU
        sku: (product_id, is_active)
        for sku, product_id, is_active in Product.objects.filter(sku__in=skus).values_list(
            "sku", "id", "is_active"
        )
    }
    checked, errors, seen = [], [], {}
    for index, (item, problem) in enumerate(zip(items, problems, strict=True)):
        sku = item.get("sku") if isinstance(item, dict) else None
        sku = sku if isinstance(sku, str) else None  # echoed back: never a nested value
        product = products.get(sku) if not problem else None
        if problem:
            errors.append(item_error(index, sku, problem))
        elif product is None:
            errors.append(item_error(index, sku, f"Unknown SKU {sku!r}.", "not_found"))
        elif not product[1]:
            errors.append(
                item_error(index, sku, f"Product {sku} is deactivated.", "product_inactive")
            )
        elif sku in seen:
            errors.append(
                item_error(index, sku, f"SKU {sku} is also item {seen[sku]}.", "duplicate_sku")
            )
        else:
            seen[sku] = index
            checked.append(
                BulkItem(
                    index=index,
                    store_id=store.pk,
                    product_id=product[0],
                    sku=sku,
                    value=item[value_field],
                    expected_on_hand=item.get("expected_on_hand"),
                )
            )
    if errors:
        raise BulkRejected(errors)
    return checked


def _item_problem(item: dict, mode: str, value_field: str, reason: str) -> str | None:
    unknown = set(item) - {"sku", value_field, "expected_on_hand"}
    if unknown:
        names = ", ".join(sorted(ascii(name)[1:-1] for name in unknown))  # escaped: no 500
        return f"Unknown field(s) for a {mode} item: {names}."
    sku = item.get("sku")
    if not isinstance(sku, str) or not 0 < len(sku) <= SKU_LENGTH or not _storable(sku):
        return f"sku must be a string of 1 to {SKU_LENGTH} characters, without NUL."
    value = item.get(value_field)
    if mode == BulkMode.SET:
        if not is_int(value) or not 0 <= value <= MAX_QUANTITY:
            return "on_hand must be a whole number from 0 to 1,000,000."
    else:
        if not is_int(value) or value == 0 or abs(value) > MAX_QUANTITY:
            return "delta must be a non-zero whole number from -1,000,000 to 1,000,000."
        if problem := adjustment_sign_problem(value, reason):
            return problem
    expected = item.get("expected_on_hand")
    if expected is not None and (not is_int(expected) or not 0 <= expected <= MAX_QUANTITY):
        return "expected_on_hand must be a whole number from 0 to 1,000,000."
    return None


def _storable(text: str) -> bool:
    """Text a database can take: no NUL, no lone surrogate (not encodable as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def bulk_reason(mode: str, reason: str) -> str:
    """The reason recorded on the movements: an adjustment needs one (``correction``
    unless given); a count may go without."""
    if reason and reason not in AdjustmentReason.values:
        raise InvalidStockOperation(f"reason must be one of: {', '.join(AdjustmentReason.values)}.")
    if mode == BulkMode.ADJUST and not reason:
        return AdjustmentReason.CORRECTION
    return reason


# --- Jobs ---------------------------------------------------------------------------


@counted("bulk_submit")
@transaction.atomic
def bulk_job_submit(
    *,
    store: Store,
    mode: str,
    items: list,
    reason: str = "",
    error_policy: str = BulkErrorPolicy.REJECT_ALL,
    actor=None,
) -> BulkJob:
    """Check every item (BulkRejected lists the bad ones), store the job and ask a
    worker to apply it once the job is committed. A job whose message is lost (broker
    down, worker killed) is found by the sweep (``bulk_jobs_resume``)."""
    if error_policy not in BulkErrorPolicy.values:
        raise InvalidStockOperation(
            f"error_policy must be one of: {', '.join(BulkErrorPolicy.values)}."
        )
    reason = bulk_reason(mode, reason)
    checked = bulk_check(store=store, mode=mode, items=items, reason=reason)
    job = BulkJob.objects.create(
        store=store,
        created_by=user_of(actor),
        mode=mode,
        error_policy=error_policy,
        reason=reason,
        items=[
            {
                "sku": item.sku,
                "product": item.product_id,
                "value": item.value,
                "expected": item.expected_on_hand,
            }
            for item in checked
        ],  # fmt: skip
        total=len(checked),
        origin_ip=current_origin().ip,
        origin_request_id=current_origin().request_id,
    )
    transaction.on_commit(lambda: _queue(job.pk), robust=True)
    return job


def _queue(job_id) -> None:
    """Ask a worker to apply the job. In the embedded mode (eager Celery) it runs here
    and now; a failure there fails the job (``bulk_job_run``), never the request."""
    from ..tasks import apply_bulk_job

    if settings.CELERY_TASK_ALWAYS_EAGER:
        bulk_job_run(job_id)
        return
    try:
        with broker_circuit:
            apply_bulk_job.delay(str(job_id))
    except CircuitOpen:
        pass  # the sweep applies it once the broker is back
    except Exception as error:  # noqa: BLE001 - the job is stored; the sweep finds it
        logger.warning("bulk job %s not queued (%s); the sweep will apply it", job_id, error)


def bulk_job_run(job_id) -> BulkJob | None:
    """Apply a job (the worker's task). Returns the job as it ended, or None when there
    is nothing to do here: the job is finished, or another worker holds it.

    ``skip_failed``: one transaction per batch, which also records the job's progress,
    so a worker killed between two batches leaves a job that resumes after the last
    committed one. ``reject_all``: every batch in one transaction, rolled back if any
    item fails (then only the job's failure is committed); a worker killed meanwhile
    leaves nothing applied.

    A run that raises fails the job, listing every item it had not applied
    (``job_failed``), so a job that cannot succeed is not retried forever; except when
    the database connection is lost under a real worker (OperationalError), which the
    sweep resumes from the last committed batch.
    """
    run = _Run(job_id)
    try:
        return run.apply()
    except (OperationalError, InterfaceError):
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            raise
        logger.exception("bulk job %s failed", job_id)
        return run.give_up()
    except Exception:
        logger.exception("bulk job %s failed", job_id)
        return run.give_up()


class _Run:
    """One attempt at a job, remembering what it has read for ``give_up``."""

    def __init__(self, job_id):
        self.job_id = job_id
        self.ordered: list[_LevelItem] | None = None

    def apply(self) -> BulkJob | None:
        with transaction.atomic():
            job = _lock_unfinished(self.job_id)
            if job is None:
                return None
            job.status = BulkJobStatus.RUNNING
            job.started_at = job.started_at or timezone.now()
            job.heartbeat_at = timezone.now()
            job.save(update_fields=["status", "started_at", "heartbeat_at"])
        with origin(ip=job.origin_ip, request_id=job.origin_request_id):
            return self._apply(job)

    def _apply(self, job: BulkJob) -> BulkJob | None:
        subjects, ordered = _prepared(_job_items(job))
        self.ordered = ordered
        actor = job.created_by
        if job.error_policy == BulkErrorPolicy.REJECT_ALL:
            return _run_all_or_nothing(job.pk, ordered, actor, subjects)
        while True:
            with transaction.atomic():
                job = _lock_unfinished(self.job_id)
                if job is None:
                    return None
                batch = ordered[job.processed : job.processed + settings.BULK_BATCH_SIZE]
                result = _apply_batches(job, batch, actor, subjects)
                _record_progress(job, len(batch), result)
                if job.status != BulkJobStatus.RUNNING:
                    return job

    def give_up(self) -> BulkJob | None:
        """Fail the job: every item not applied yet is listed as ``job_failed``."""
        if not connection.in_atomic_block and not connection.is_usable():
            connection.close()  # lost with the error; the next query reconnects
        with transaction.atomic():
            job = _lock_unfinished(self.job_id)
            if job is None:
                return None
            if job.error_policy == BulkErrorPolicy.REJECT_ALL:
                job.applied = 0
            left = (
                self.ordered[job.processed :]
                if self.ordered is not None and job.error_policy == BulkErrorPolicy.SKIP_FAILED
                else _job_items(job)
            )
            detail = "The job stopped before this item could be applied; it was not applied."
            job.processed = job.total
            _record_progress(
                job,
                0,
                BulkResult(errors=[item_error(i.index, i.sku, detail, "job_failed") for i in left]),
                failed=True,
            )
            return job


def _run_all_or_nothing(job_id, ordered: list[BulkItem], actor, subjects) -> BulkJob | None:
    with transaction.atomic():
        job = _lock_unfinished(job_id)
        if job is None:
            return None
        result = _all_or_none(lambda: _apply_batches(job, ordered, actor, subjects))
        _record_progress(job, len(ordered), result)
        return job


class _RollBack(Exception):
    """Undoes an all-or-none application when one of its items failed."""


def _all_or_none(apply) -> BulkResult:
    """Run ``apply`` in a savepoint and undo all of it if any item failed: the result
    then lists every failure, in item order, and counts nothing applied."""
    try:
        with transaction.atomic():
            result = apply()
            if result.errors:
                raise _RollBack
    except _RollBack:
        result.applied = result.unchanged = 0
        result.errors.sort(key=lambda error: error["index"])
    return result


def _prepared(items: list[BulkItem]) -> tuple["_Subjects", list["_LevelItem"]]:
    """The items' stores and products as they are now, and the items in level order,
    after creating the missing levels of those that can still be applied."""
    subjects = _Subjects(items)
    ensure_stock_levels_by_ids(
        (item.store_id, item.product_id) for item in items if not subjects.refusal(item)
    )
    return subjects, _in_level_order(items)


def _lock_unfinished(job_id) -> BulkJob | None:
    """The job, locked, if it is unfinished and no other worker holds it."""
    return (
        BulkJob.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(pk=job_id, status__in=[BulkJobStatus.QUEUED, BulkJobStatus.RUNNING])
        .select_related("store", "created_by")
        .defer("items")  # read once per run (``_job_items``), not with every batch
        .first()
    )


def _job_items(job: BulkJob) -> list[BulkItem]:
    items = BulkJob.objects.values_list("items", flat=True).get(pk=job.pk)
    return [
        BulkItem(
            index=index,
            store_id=job.store_id,
            product_id=item["product"],
            sku=item["sku"],
            value=item["value"],
            expected_on_hand=item.get("expected"),
        )
        for index, item in enumerate(items)
    ]


def _apply_batches(job: BulkJob, items: list[BulkItem], actor, subjects) -> BulkResult:
    """Apply ``items`` (in level order) batch by batch in the caller's transaction; a
    store deactivated since the job was accepted fails every item."""
    try:
        refuse_inactive(Store.objects.get(pk=job.store_id), [])
    except StoreInactive as inactive:
        return BulkResult(
            errors=[
                item_error(item.index, item.sku, str(inactive), inactive.code) for item in items
            ]
        )
    return apply_in_batches(
        items,
        mode=job.mode,
        reason=job.reason,
        reference=f"bulk:{job.pk}",
        actor=actor,
        record_unchanged=True,
        subjects=subjects,
    )


def _record_progress(job: BulkJob, handled: int, result: BulkResult, failed=False) -> None:
    now = timezone.now()
    job.processed += handled
    job.applied += result.applied + result.unchanged
    job.failed += len(result.errors)
    job.errors = sorted([*job.errors, *result.errors], key=lambda error: error["index"])
    job.heartbeat_at = now
    if job.processed >= job.total:
        job.processed = job.total
        failed = failed or (job.error_policy == BulkErrorPolicy.REJECT_ALL and job.failed)
        job.status = BulkJobStatus.FAILED if failed else BulkJobStatus.DONE
        job.finished_at = now
    job.save(
        update_fields=[
            "processed", "applied", "failed", "errors", "heartbeat_at", "status", "finished_at"
        ]
    )  # fmt: skip


def bulk_jobs_resume() -> int:
    """The sweep: queue every job that is waiting too long, or running without a
    heartbeat for ``BULK_JOB_STALE_SECONDS`` (its worker died); returns how many. A job
    another worker holds is skipped when the task runs (``_lock_unfinished``)."""
    stale = timezone.now() - timedelta(seconds=settings.BULK_JOB_STALE_SECONDS)
    job_ids = list(
        BulkJob.objects.filter(status__in=[BulkJobStatus.QUEUED, BulkJobStatus.RUNNING])
        .filter(
            Q(status=BulkJobStatus.QUEUED, created_at__lte=stale)
            | Q(status=BulkJobStatus.RUNNING, heartbeat_at__lte=stale)
        )
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
    for job_id in job_ids:
        try:
            bulk_job_run(job_id)
        except DatabaseError:  # the database is gone for now: the next sweep tries again
            logger.exception("bulk job %s not resumed", job_id)
            break
    return len(job_ids)


# --- Applying, in the caller's transaction ------------------------------------------


@counted("bulk")
@transaction.atomic
def stock_apply_bulk(
    *,
    mode: str,
    items: list[BulkItem],
    reason: str = "",
    reference: str = "",
    record_unchanged: bool = True,
    actor=None,
) -> BulkResult:
    """Apply checked items (of any stores) now, all or none: if any item fails, nothing
    is applied and the result lists every failure. For operator input (CSV files),
    where ``expected_version`` may make an item a compare-and-set on the level's
    version and ``record_unchanged=False`` skips counts equal to on_hand."""
    reason = bulk_reason(mode, reason)
    stores = Store.objects.filter(pk__in={item.store_id for item in items})
    for store in stores:
        refuse_inactive(store, [])
    subjects, ordered = _prepared(items)
    return _all_or_none(
        lambda: apply_in_batches(
            ordered,
            mode=mode,
            reason=reason,
            reference=reference,
            actor=actor,
            record_unchanged=record_unchanged,
            subjects=subjects,
        )
    )


def apply_in_batches(
    items: list[BulkItem], *, mode, reason, reference, actor, record_unchanged, subjects=None
) -> BulkResult:
    """Apply ``items`` (in level order, each level once) in batches of
    ``BULK_BATCH_SIZE``, then write the stock events of every applied item with ONE
    statement (the stores' sequence rows are locked after the last batch's levels, as
    every change locks them); the levels are announced after commit. An item whose
    product was deleted or deactivated since it was checked fails (``not_found``,
    ``product_inactive``) without reaching the database."""
    result, levels = BulkResult(), []
    kind = KINDS[BulkMode(mode)]
    subjects = subjects or _Subjects(items)
    size = settings.BULK_BATCH_SIZE
    for start in range(0, len(items), size):
        batch = []
        for item in items[start : start + size]:
            if refusal := subjects.refusal(item):
                result.errors.append(refusal)
            else:
                batch.append(item)
        outcomes = apply_bulk_batch(
            [(item.level_id, item.value, item.expected_on_hand, item.expected_version)
             for item in batch],
            kind=kind,
            absolute=mode == BulkMode.SET,
            reason=reason,
            reference=reference,
            actor=actor,
            record_unchanged=record_unchanged,
        )  # fmt: skip
        for item, outcome in zip(batch, outcomes, strict=True):
            if outcome.level is not None:
                result.applied += 1
                levels.append(outcome.level)
            elif outcome.code == BulkOutcome.UNCHANGED:
                result.unchanged += 1
            else:
                result.errors.append(item_error(item.index, item.sku, outcome.detail, outcome.code))
    if levels:
        write_events([level.event for level in levels])
        announce(kind, subjects.attach(levels))
    return result


def _in_level_order(items: Iterable[BulkItem]) -> list["_LevelItem"]:
    """``items`` with their stock level ids, in level id order: the order every
    multi-row change locks in. An item without a level (its product is gone) comes
    first, with level id 0; ``apply_in_batches`` refuses it."""
    items = list(items)
    ids = stock_level_ids((item.store_id, item.product_id) for item in items)
    return sorted(
        (_LevelItem(**item.__dict__, level_id=ids.get((item.store_id, item.product_id), 0))
         for item in items),
        key=lambda item: item.level_id,
    )  # fmt: skip


@dataclass(frozen=True)
class _LevelItem(BulkItem):
    level_id: int = 0


class _Subjects:
    """The stores and products of the items as they are now, loaded once (one query
    each), not per batch: what ``stock_changed`` receivers read of a level (code, SKU,
    name), and whether each product still exists and is active."""

    def __init__(self, items: list[BulkItem]):
        self.stores = Store.objects.in_bulk({item.store_id for item in items})
        table = connection.ops.quote_name(Product._meta.db_table)
        ids, param = id_rows(sorted({item.product_id for item in items}))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, sku, name, is_active FROM {table} "
                f"WHERE id IN (SELECT id FROM {ids} AS wanted)",
                [param],
            )
            self.products = {
                row[0]: Product(id=row[0], sku=row[1], name=row[2], is_active=row[3])
                for row in cursor
            }

    def refusal(self, item: BulkItem) -> dict | None:
        product = self.products.get(item.product_id)
        if product is None:
            return item_error(item.index, item.sku, f"Product {item.sku} no longer exists.",
                              "not_found")  # fmt: skip
        if not product.is_active:
            inactive = ProductInactive(item.sku)
            return item_error(item.index, item.sku, inactive.detail, inactive.code)
        return None

    def attach(self, levels: list[StockLevel]) -> list[StockLevel]:
        for level in levels:
            level.store = self.stores[level.store_id]
            level.product = self.products[level.product_id]
        return levels
