"""Celery tasks of the event log."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from .services import may_prune_events, stock_events_prune
from .webhooks.retention import may_prune_deliveries, webhook_deliveries_prune

logger = logging.getLogger(__name__)


@shared_task
def prune_stock_events() -> dict[str, int | None]:
    """Delete the events older than ``STOCK_EVENT_RETENTION_DAYS`` and the webhook
    deliveries finished more than ``WEBHOOK_DELIVERY_RETENTION_DAYS`` ago, with their
    attempts (daily, by beat); answers how many of each went (None: not pruned here).

    Where the worker connects as the app's role (least privilege), which may not delete
    events, it deletes no event and says so: there the owner prunes them, with
    ``bin/run owner prune_events`` on a schedule of the deployment's. That role may
    delete deliveries: those are pruned here either way."""
    pruned: dict[str, int | None] = {"events": None, "deliveries": None, "attempts": None}
    if may_prune_deliveries():
        pruned["deliveries"], pruned["attempts"] = webhook_deliveries_prune(
            older_than=timedelta(days=settings.WEBHOOK_DELIVERY_RETENTION_DAYS)
        )
    else:
        logger.warning(
            "Webhook deliveries not pruned: the worker's database role may not delete them. "
            "Run `bin/run owner prune_events` daily as the tables' owner instead."
        )
    if may_prune_events():
        pruned["events"] = stock_events_prune(
            older_than=timedelta(days=settings.STOCK_EVENT_RETENTION_DAYS)
        )
    else:
        logger.warning(
            "Stock events not pruned: the worker's database role may not delete them. "
            "Run `bin/run owner prune_events` daily as the tables' owner instead."
        )
    return pruned
