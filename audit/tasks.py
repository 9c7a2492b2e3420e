"""Celery tasks of the audit app."""

from celery import shared_task
from celery.signals import task_prerun, worker_ready

from inventory_site.logs import sent_context

from .context import set_task_origin
from .services import audit_relay_pending


@shared_task(acks_late=False)
def relay_audit_outbox() -> int:
    """Relay the outbox into the audit log: sent after commits that recorded changes (at
    most one message per AUDIT_RELAY_SEND_INTERVAL_SECONDS and process), by beat every
    AUDIT_RELAY_INTERVAL_SECONDS, and when a worker starts. Safe to run any number of
    times, concurrently too. Acknowledged on receipt: a lost message costs nothing, the
    next one or the sweep relays the same rows."""
    return audit_relay_pending()


@worker_ready.connect
def relay_when_a_worker_starts(sender, **kwargs):
    """Entries left while no worker ran (or by a killed one) are relayed at once."""
    relay_audit_outbox.delay()


@task_prerun.connect
def record_task_origin(task_id=None, task=None, **kwargs):
    """Changes a worker makes are traced to the request that sent the task, whose id its
    log lines carry too, or else to the task itself. A task run eagerly inside a request
    keeps the request's origin."""
    if not getattr(task.request, "is_eager", False):
        set_task_origin(task_id, request_id=sent_context(task).get("request_id"))
