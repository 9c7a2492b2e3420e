"""Where the live stream's messages travel: one Redis pub/sub channel per store, on the
cache's Redis, and what a message carries (an event as the events API shows it).

The publisher (``events.publisher``) and the stream (``events.stream``) both name the
channels and encode the events here, so that a backlog read from the log and a message
heard live are the same bytes.
"""

import json

from django.conf import settings
from rest_framework.fields import DateTimeField

_AT = DateTimeField()


def uses_redis() -> bool:
    """Whether the cache is a Redis: without one (the embedded mode) there is no channel."""
    return settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"


def redis_url() -> str:
    return settings.CACHES["default"]["LOCATION"]


def store_channel(store_id: int) -> str:
    """The channel of a store's events. Redis channels are shared by every database
    number of a server, so the name carries CACHE_KEY_PREFIX, as the cache keys do."""
    return f"{settings.CACHE_KEY_PREFIX}:events:store:{store_id}"


def event_data(event, sku: str) -> str:
    """A StockEvent as the JSON the stream sends (and the events API lists): ``seq``,
    ``type``, ``sku``, the level's values after the change and ``at``."""
    return json.dumps(
        {
            "seq": event.seq,
            "type": event.type,
            "sku": sku,
            "on_hand": event.on_hand,
            "reserved": event.reserved,
            "available": event.available,
            "reorder_point": event.reorder_point,
            "version": event.version,
            "at": _AT.to_representation(event.at),
        },
        separators=(",", ":"),
    )
