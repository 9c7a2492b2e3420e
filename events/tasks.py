"""Celery tasks of the event log."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from .services import may_prune_events, stock_events_prune

logger = logging.getLogger(__name__)


@shared_task
def prune_stock_events() -> int | None:
    """Delete the events older than ``STOCK_EVENT_RETENTION_DAYS`` (daily, by beat).

    Where the worker connects as the app's role (least privilege), which may not delete
    events, it deletes nothing and says so: there the owner prunes, with
    ``bin/run owner prune_events`` on a schedule of the deployment's."""
    if not may_prune_events():
        logger.warning(
            "Stock events not pruned: the worker's database role may not delete them. "
            "Run `bin/run owner prune_events` daily as the tables' owner instead."
        )
        return None
    return stock_events_prune(older_than=timedelta(days=settings.STOCK_EVENT_RETENTION_DAYS))
