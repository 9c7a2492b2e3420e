"""The webhooks hear of committed events (``events.signals``)."""

from django.dispatch import receiver

from events.signals import stock_events_committed

from .registry import active_subscriptions
from .services import send_deliveries


@receiver(stock_events_committed, dispatch_uid="webhooks-dispatch")
def deliver_committed_events(sender, events, **kwargs):
    """Wake the active subscriptions of the events' stores (``registry``): the writer
    neither reads the subscriptions nor waits for a receiver. Without a broker (eager)
    the deliveries run here; with one the log and the cursors are safe whatever happens
    to the message (the sweep)."""
    subscription_ids = active_subscriptions.of_stores({event.store_id for event in events})
    if subscription_ids:
        send_deliveries(subscription_ids)
