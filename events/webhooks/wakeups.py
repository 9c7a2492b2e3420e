"""The messages that wake a worker for webhooks, coalesced: at most one waiting per store
(to enqueue its new events) and per subscription (to deliver what is due).

Whoever would send a message first sets the thing's marker in the cache's Redis (SET NX,
with an expiry); only the one that set it sends. The task clears the markers before it
reads the rows, so anything committed after that sets a marker again and sends another
message, and anything committed before is read by the task. Under a burst of writes a
store costs the worker one message per run of its task instead of one per commit, and
each write one Redis round trip instead of a broker publish.

Without Redis (the embedded mode, whose tasks run at once) and while Redis fails, every
message is sent: a marker only saves work. A marker whose message was lost expires
``MARKER_SECONDS`` after the message was due; beat's sweep finds the rows meanwhile. One
whose message could not be sent (the broker down) is cleared at once.
"""

from django.conf import settings

from events.channels import uses_redis
from inventory_site.cache_outage import CACHE_ERRORS, cache_circuit

MARKER_SECONDS = 5
STORE, SUBSCRIPTION = "dispatch", "deliver"


def _lifetime_ms() -> int:
    """A marker outlives its message's wait (``WEBHOOK_COALESCE_SECONDS``) by
    ``MARKER_SECONDS``: it must not expire while its message still waits."""
    return round(1000 * (settings.WEBHOOK_COALESCE_SECONDS + MARKER_SECONDS))


def _marker(kind: str, key: int) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:webhooks:{kind}:{key}"


def _redis():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def to_wake(kind: str, keys) -> list[int]:
    """Those of ``keys`` that no waiting message of ``kind`` covers: the caller sends a
    message for them, now marked."""
    keys = sorted(set(keys))
    if not keys or not uses_redis():
        return keys
    try:
        with cache_circuit:
            pipeline = _redis().pipeline(transaction=False)
            for key in keys:
                pipeline.set(_marker(kind, key), 1, nx=True, px=_lifetime_ms())
            marked = pipeline.execute()
    except CACHE_ERRORS:
        return keys
    return [key for key, was_set in zip(keys, marked, strict=True) if was_set]


def woken(kind: str, keys) -> None:
    """The task for ``keys`` runs now: later commits need a message of their own."""
    keys = list(keys)
    if not keys or not uses_redis():
        return
    try:
        with cache_circuit:
            _redis().delete(*(_marker(kind, key) for key in keys))
    except CACHE_ERRORS:
        pass  # the markers expire
