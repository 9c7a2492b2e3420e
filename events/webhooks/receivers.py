"""The webhooks hear of committed events (``events.signals``)."""

from django.dispatch import receiver

from events.signals import stock_events_committed

from .registry import active_stores
from .services import send_dispatch


@receiver(stock_events_committed, dispatch_uid="webhooks-dispatch")
def dispatch_committed_events(sender, events, **kwargs):
    """One message for the stores of the events that have webhooks (``registry``): the
    writer neither reads the subscriptions nor waits for a receiver. Without a broker
    (eager) the deliveries run here; with one the log and the cursors are safe whatever
    happens to the message (the sweep)."""
    store_ids = {event.store_id for event in events} & active_stores.store_ids()
    if store_ids:
        send_dispatch(store_ids)
