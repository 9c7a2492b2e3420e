"""What workers are asked to do for the webhooks, and beat's sweep of what a lost
message left. A stock write never waits for a receiver: at most it sends a message
(``wakeups``)."""

import logging

from django.conf import settings
from django.utils import timezone

from inventory_site.cache_outage import CircuitOpen, broker_circuit

from .. import wakeups
from ..models import WebhookSubscription

logger = logging.getLogger(__name__)


def send_deliveries(subscription_ids) -> None:
    """After a commit that wrote events: a worker sends them to these subscriptions, a
    moment later (the commits of that moment share the message; one waiting message per
    subscription, ``wakeups``). In the embedded mode (eager Celery) that happens here
    and now."""
    from ..tasks import deliver_webhooks

    subscription_ids = sorted(set(subscription_ids))
    if settings.CELERY_TASK_ALWAYS_EAGER:
        for subscription_id in subscription_ids:
            _send(deliver_webhooks, subscription_id)
        return
    countdown = settings.WEBHOOK_COALESCE_SECONDS
    for subscription_id in wakeups.to_wake(
        wakeups.SUBSCRIPTION, subscription_ids, countdown=countdown
    ):
        if not _send(deliver_webhooks, subscription_id, countdown=countdown):
            wakeups.woken(wakeups.SUBSCRIPTION, [subscription_id])  # the next may send


def send_deliver(subscription_id: int) -> None:
    """A worker sends what the subscription has due, now."""
    from ..tasks import deliver_webhooks

    if settings.CELERY_TASK_ALWAYS_EAGER:
        _send(deliver_webhooks, subscription_id)
    elif wakeups.to_wake(wakeups.SUBSCRIPTION, [subscription_id]):
        if not _send(deliver_webhooks, subscription_id):
            wakeups.woken(wakeups.SUBSCRIPTION, [subscription_id])


def webhooks_sweep() -> int:
    """Beat's sweep: have every active subscription with something to send sent to
    (events whose signal or message was lost, retries fallen due, a hold that ran out,
    a run whose worker died and whose lease ran out). Returns how many."""
    from .delivery import work_due

    now = timezone.now()
    subscription_ids = list(
        WebhookSubscription.objects.filter(is_active=True)
        .exclude(sending_until__gte=now)
        .filter(work_due(now))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for subscription_id in subscription_ids:
        send_deliver(subscription_id)
    return len(subscription_ids)


def _send(task, argument, *, countdown: float = 0) -> bool:
    """Whether the task ran (eager) or its message was queued."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        task.apply(args=[argument])
        return True
    try:
        with broker_circuit:
            task.apply_async(args=[argument], retry=False, countdown=countdown or None)
    except CircuitOpen:
        return False  # the sweep finds the rows
    except Exception as error:  # noqa: BLE001 - the rows are stored; the sweep finds them
        logger.warning("%s not queued (%s); the webhook sweep will do it", task.name, error)
        return False
    return True
