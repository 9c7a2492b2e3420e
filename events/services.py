"""Writes to the stock event log besides the stock services' own: pruning it.

The stock services append events (``stock.services``); nothing else changes them, and
pruning deletes the old ones. The app's database role may only read and append
(``inventory_site.privileges``): pruning is the tables' owner's, as the audit log's is.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from inventory_site.privileges.current import may_delete

from .models import StockEvent
from .selectors import events_older_than

# Events deleted per statement and transaction: a batch's locks and undo stay small, and
# an interrupted prune keeps the batches it committed.
PRUNE_BATCH_SIZE = 5000


def stock_events_prune(*, older_than: timedelta, batch_size: int = PRUNE_BATCH_SIZE) -> int:
    """Delete every store's events that happened more than ``older_than`` ago, the
    oldest first, ``batch_size`` per transaction; returns how many.

    Each batch is one DELETE whose rows the statement chooses itself (no ids pass
    through Python, so memory stays bounded however many go), committed on its own.
    The stores' ``StoreEventSequence`` rows are left as they are: numbering goes on
    after the last ``seq`` handed out, pruned or not, and a client's cursor stays valid.
    Raises the database's permission error where the connection may not delete events
    (the app's role): ``may_prune_events`` asks first."""
    cutoff = timezone.now() - older_than
    deleted = 0
    while True:
        with transaction.atomic():
            batch = events_older_than(cutoff).values("pk")[:batch_size]
            count, _ = StockEvent.objects.filter(pk__in=batch).delete()
        deleted += count
        if count < batch_size:
            return deleted


def may_prune_events() -> bool:
    """Whether this connection's database user may delete events: on PostgreSQL not the
    app's role of a least-privilege deployment, only the tables' owner."""
    return may_delete(StockEvent)
