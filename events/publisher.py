"""Committed events to the live streams: each commit's events are published to their
stores' Redis channels (``events.channels``) in one round trip.

A publish that fails loses nothing: the events are in the log, and a stream that hears a
later event of its store fills the gap from the log, as a client that reconnects with
``Last-Event-ID`` does. So a Redis that does not answer is logged once per outage and
skipped (``cache_circuit``), never raised into the change, which has committed.
"""

import logging

from django.dispatch import receiver

from catalog.models import Product
from inventory_site.cache_outage import CACHE_ERRORS, OutageLog, cache_circuit

from .channels import event_data, store_channel, uses_redis
from .models import StockEvent
from .signals import stock_events_committed

logger = logging.getLogger(__name__)
outage = OutageLog(logger, "Live stream publishing")


@receiver(stock_events_committed, dispatch_uid="events.publisher")
def publish_committed_events(sender, events, **kwargs):
    if not events or not uses_redis():
        return
    skus = skus_of(events)
    from django_redis import get_redis_connection

    try:
        with cache_circuit:
            pipeline = get_redis_connection("default").pipeline(transaction=False)
            for event in events:
                pipeline.publish(
                    store_channel(event.store_id), event_data(event, skus[event.product_id])
                )
            pipeline.execute()
    except CACHE_ERRORS as error:
        outage.failed(error, "live streams read the events from the log when they resume")
    else:
        outage.succeeded()


def skus_of(events: list[StockEvent]) -> dict[int, str]:
    """The SKU of each event's product: from the product the writer attached, else one
    query for the commit's products."""
    skus = {
        event.product_id: event.product.sku
        for event in events
        if StockEvent.product.is_cached(event)
    }
    missing = {event.product_id for event in events} - skus.keys()
    if missing:
        skus.update(Product.objects.filter(pk__in=missing).values_list("pk", "sku"))
    return skus
