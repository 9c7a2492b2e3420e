"""Celery tasks of the stock app: thin, idempotent, safe to run twice."""

from celery import shared_task

from .idempotency import purge_expired_idempotency_records


@shared_task
def purge_idempotency_records() -> int:
    """Delete Idempotency-Key answers past their TTL (hourly, by beat)."""
    return purge_expired_idempotency_records()
