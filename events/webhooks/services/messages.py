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


def send_dispatch(store_ids) -> None:
    """After a commit that wrote events: a worker has them sent to the stores'
    subscriptions, a moment later (the commits of that moment share the message; one
    waiting message per store, ``wakeups``). One message per store, not per
    subscription: the writer pays one marker and at most one publish whatever the
    number of subscriptions. In the embedded mode (eager Celery) it happens here and
    now."""
    from ..tasks import dispatch_webhooks

    store_ids = sorted(set(store_ids))
    if settings.CELERY_TASK_ALWAYS_EAGER:
        _send(dispatch_webhooks, store_ids)
        return
    countdown = settings.WEBHOOK_COALESCE_SECONDS
    if store_ids := wakeups.to_wake(wakeups.STORE, store_ids, countdown=countdown):
        if not _send(dispatch_webhooks, store_ids, countdown=countdown):
            wakeups.woken(wakeups.STORE, store_ids)  # no message waits: the next may send


def stores_dispatch(store_ids) -> int:
    """The task of ``send_dispatch``: a message to each active subscription of the
    stores (one waiting per subscription), so that each sends on its own and a slow
    receiver holds up no other. Returns how many subscriptions there were."""
    subscription_ids = list(
        WebhookSubscription.objects.filter(store_id__in=store_ids, is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for subscription_id in subscription_ids:
        send_deliver(subscription_id)
    return len(subscription_ids)


def send_deliver(subscription_id: int, *, countdown: float = 0) -> None:
    """A worker sends what the subscription has to send, in ``countdown`` seconds."""
    from ..tasks import deliver_webhooks

    if settings.CELERY_TASK_ALWAYS_EAGER:
        _send(deliver_webhooks, subscription_id)
    elif wakeups.to_wake(wakeups.SUBSCRIPTION, [subscription_id], countdown=countdown):
        if not _send(deliver_webhooks, subscription_id, countdown=countdown):
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
