"""The messages that wake a worker for webhooks, coalesced: at most one waiting per store
(to wake its subscriptions) and per subscription (to send its new events and what is
due again).

Whoever would send a message first sets the thing's marker in the cache's Redis (SET NX,
with an expiry); only the one that set it sends. The task clears the markers before it
reads the rows, so anything committed after that sets a marker again and sends another
message, and anything committed before is read by the task. Under a burst of writes a
store costs the worker one message per run of its task instead of one per commit, and
a write at most one Redis round trip instead of a broker publish.

A marker holds the time its message is due (its ETA). Whoever finds a marker, or sets
one, remembers that time in-process: until then its commits are covered by that message
(it cannot run before its ETA, and what it starts reads the log then; a subscription's
run that finds another run sending leaves it to that one, which looks for work once it
let go), so they skip Redis too. Under a burst a process then asks Redis once per
coalescing window, not once per commit. This trusts the clocks of the web processes
and the workers to agree within ``CLOCK_MARGIN_SECONDS``, and a message whose sender
failed to publish it still covers, in the processes that learned its ETA, the commits
until then: at worst those events go with the next commit's message, or the sweep's.
(``SET NX GET``: Redis 7 or later; an older one answers an error, and every message is
sent.)

Without Redis (the embedded mode, whose tasks run at once) and while Redis fails, every
message is sent: a marker only saves work. A marker whose message was lost expires
``MARKER_SECONDS`` after the message was due; beat's sweep finds the rows meanwhile. One
whose message could not be sent (the broker down) is cleared at once.
"""

import threading
import time

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


# A message covers the commits until its ETA less this: what a worker's clock may be
# ahead of this process's.
CLOCK_MARGIN_SECONDS = 0.02


class _Covered:
    """Until when a waiting message covers this process's commits, by marker."""

    def __init__(self):
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def uncovered(self, markers: list[str], now: float) -> list[str]:
        until = self._until
        return [marker for marker in markers if until.get(marker, 0.0) <= now]

    def cover(self, marker: str, due_at: float) -> None:
        with self._lock:
            if len(self._until) > 10_000:  # forget the long past
                self._until = {m: t for m, t in self._until.items() if t > time.time()}
            self._until[marker] = due_at - CLOCK_MARGIN_SECONDS

    def clear(self) -> None:
        with self._lock:
            self._until = {}

    def forget(self, markers) -> None:
        with self._lock:
            for marker in markers:
                self._until.pop(marker, None)


covered = _Covered()


def to_wake(kind: str, keys, *, countdown: float = 0.0) -> list[int]:
    """Those of ``keys`` that no waiting message of ``kind`` covers: the caller sends a
    message for them, now marked, with this ``countdown``."""
    keys = sorted(set(keys))
    if not keys or not uses_redis():
        return keys
    now = time.time()
    by_marker = {_marker(kind, key): key for key in keys}
    asked = covered.uncovered(list(by_marker), now)
    if not asked:
        return []
    due_ms = round(1000 * (now + countdown))
    try:
        with cache_circuit:
            pipeline = _redis().pipeline(transaction=False)
            for marker in asked:
                pipeline.set(marker, due_ms, nx=True, px=_lifetime_ms(), get=True)
            found = pipeline.execute()
    except CACHE_ERRORS:
        return [by_marker[marker] for marker in asked]
    wake = []
    for marker, due in zip(asked, found, strict=True):
        if due is None:  # marked now: the caller's message
            wake.append(by_marker[marker])
            covered.cover(marker, due_ms / 1000)
        else:
            covered.cover(marker, int(due) / 1000)
    return wake


def woken(kind: str, keys) -> None:
    """The task for ``keys`` runs now: later commits need a message of their own."""
    keys = list(keys)
    if not keys or not uses_redis():
        return
    markers = [_marker(kind, key) for key in keys]
    covered.forget(markers)
    try:
        with cache_circuit:
            _redis().delete(*markers)
    except CACHE_ERRORS:
        pass  # the markers expire
