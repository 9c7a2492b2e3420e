"""Retention of the webhooks' delivery log: a delivery and its attempts are kept for
``WEBHOOK_DELIVERY_RETENTION_DAYS`` after it finished (succeeded, or given up), then
deleted by the daily prune (``events.tasks.prune_stock_events``, ``manage.py
prune_events``). A delivery still due (pending, or failed with a next try) is never
deleted, however old: it is what at-least-once delivery runs off.

The app's database role may delete deliveries and their attempts
(``inventory_site.privileges``: deleting a subscription takes them with it), so unlike
the event log's prune this one also runs where the worker connects as that role.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from inventory_site.privileges.current import may_delete

from .models import FINISHED_STATUSES, WebhookAttempt, WebhookDelivery

# Deliveries deleted per transaction, with their attempts (a delivery of the default
# retry schedule has at most 11).
PRUNE_BATCH_SIZE = 1000


def finished_deliveries_before(cutoff: datetime) -> QuerySet[WebhookDelivery]:
    """The deliveries that finished before ``cutoff``, every store's, the oldest first
    (``webhookdelivery_finished_idx``). A delivery's ``updated_at`` is when its last
    attempt was recorded, or a redelivery restarted it."""
    return WebhookDelivery.objects.filter(
        status__in=FINISHED_STATUSES, updated_at__lt=cutoff
    ).order_by("updated_at")


def webhook_deliveries_prune(
    *, older_than: timedelta, batch_size: int = PRUNE_BATCH_SIZE
) -> tuple[int, int]:
    """Delete the deliveries that finished more than ``older_than`` ago, with their
    attempts, ``batch_size`` deliveries per transaction, the oldest first; returns how
    many deliveries and attempts went.

    Each batch locks its deliveries first (``FOR UPDATE SKIP LOCKED``, which reads a row
    that changed meanwhile again): one that a redelivery just made due again is not
    deleted, and one a worker or a manager holds is left for the next prune.
    """
    cutoff = timezone.now() - older_than
    deliveries = attempts = 0
    while True:
        with transaction.atomic():
            batch = list(
                finished_deliveries_before(cutoff)
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:batch_size]
            )
            _, gone = WebhookDelivery.objects.filter(pk__in=batch).only("pk").delete()
        deliveries += gone.get(WebhookDelivery._meta.label, 0)
        attempts += gone.get(WebhookAttempt._meta.label, 0)
        if len(batch) < batch_size:
            return deliveries, attempts


def may_prune_deliveries() -> bool:
    """Whether this connection's database user may delete deliveries and their
    attempts (the owner and, as granted, the app's role)."""
    return may_delete(WebhookDelivery, WebhookAttempt)
