"""Celery tasks of the webhooks: thin, idempotent (the rows say what is left to do)."""

from celery import shared_task
from celery.signals import worker_ready

from . import wakeups
from .services import stores_dispatch, subscription_deliver, webhooks_sweep


@shared_task(acks_late=False)
def dispatch_webhooks(store_ids: list[int]) -> int:
    """Have the stores' subscriptions send their new events (a message each).
    Acknowledged on receipt: a lost message costs a sweep interval, never an event."""
    wakeups.woken(wakeups.STORE, store_ids)
    return stores_dispatch(store_ids)


@shared_task(acks_late=False)
def deliver_webhooks(subscription_id: int) -> int:
    """Send what the subscription has to send: its retries due, then the events past
    its cursor. Acknowledged on receipt: the subscription's lease and cursor, not the
    message, make it safe against a worker dying mid-request, and a lost message costs
    a sweep interval, never an event."""
    wakeups.woken(wakeups.SUBSCRIPTION, [subscription_id])
    return subscription_deliver(subscription_id)


@shared_task(acks_late=False)
def sweep_webhooks() -> int:
    """Have sent whatever lost signals, lost messages, retry delays and dead workers
    left (by beat, every WEBHOOK_SWEEP_INTERVAL_SECONDS, and when a worker starts)."""
    return webhooks_sweep()


@worker_ready.connect
def sweep_when_a_worker_starts(sender, **kwargs):
    sweep_webhooks.delay()
