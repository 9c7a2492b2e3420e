"""Celery tasks of the stock app: thin, idempotent, safe to run twice."""

from celery import shared_task
from celery.signals import worker_ready

from .idempotency import purge_expired_idempotency_records
from .services import bulk_job_run, bulk_jobs_resume, reservations_expire_all_due


@shared_task
def expire_reservations(via: str = "beat sweep") -> int:
    """Expire every due checkout hold (every RESERVATION_EXPIRY_INTERVAL_SECONDS, by beat)."""
    return reservations_expire_all_due(via=via)


@shared_task
def apply_bulk_job(job_id: str) -> str | None:
    """Apply a bulk stock job, resuming after its last committed batch; a job already
    finished or held by another worker is left alone."""
    job = bulk_job_run(job_id)
    return job.status if job else None


@shared_task
def resume_bulk_jobs() -> int:
    """Apply the jobs whose message or worker was lost (by beat)."""
    return bulk_jobs_resume()


@shared_task
def purge_idempotency_records() -> int:
    """Delete Idempotency-Key answers past their TTL (hourly, by beat)."""
    return purge_expired_idempotency_records()


@worker_ready.connect
def sweep_when_a_worker_starts(sender, **kwargs):
    """Holds that fell due while no worker ran are expired, and bulk jobs whose worker
    died are resumed, as soon as a worker is back."""
    expire_reservations.delay(via="worker start")
    resume_bulk_jobs.delay()


@shared_task
def reconcile_flash_gates(level_ids: list[int] | None = None) -> int | None:
    """Reseed flash-sale gate tokens from the database (every
    FLASH_GATE_RECONCILE_SECONDS, by beat; after Redis failed or lost them; after a gate
    is switched on)."""
    from .flash_gate.services import gates_reconcile_safely

    return gates_reconcile_safely(level_ids=level_ids)
