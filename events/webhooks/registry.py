"""Which stores have an active webhook subscription, as this process last read it.

The receiver of every commit's events asks this before it sends a message, so that a
store without webhooks (most of them) costs its writes no broker round trip. The set is
read again at most every ``WEBHOOK_REGISTRY_SECONDS``, and at once in the process that
changed a subscription; another process may miss a new subscription's first events for
that long, which the beat sweep then sends (the subscription's cursor loses nothing).
"""

import threading
import time

from django.conf import settings
from django.db import DatabaseError


class ActiveStores:
    def __init__(self):
        self._store_ids: frozenset[int] = frozenset()
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def store_ids(self) -> frozenset[int]:
        if time.monotonic() - self._read_at >= settings.WEBHOOK_REGISTRY_SECONDS:
            with self._lock:
                if time.monotonic() - self._read_at >= settings.WEBHOOK_REGISTRY_SECONDS:
                    self._read()
        return self._store_ids

    def read_again(self) -> None:
        self._read_at = float("-inf")

    def _read(self) -> None:
        from .models import WebhookSubscription

        try:
            rows = WebhookSubscription.objects.filter(is_active=True).order_by()
            self._store_ids = frozenset(rows.values_list("store_id", flat=True).distinct())
        except DatabaseError:
            pass  # keep the last answer; the sweep covers what it misses
        self._read_at = time.monotonic()


active_stores = ActiveStores()
