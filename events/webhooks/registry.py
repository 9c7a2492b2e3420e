"""Which webhook subscriptions are active, by store, as this process last read them.

The receiver of every commit's events asks this which subscriptions to wake, so that a
store without webhooks (most of them) costs its writes nothing, and one with webhooks
one Redis round trip, not a read of the subscriptions. The map is read again at most
every ``WEBHOOK_REGISTRY_SECONDS``, and at once in the process that changed a
subscription; another process may miss a new subscription's first events for that long,
which the beat sweep then sends (the subscription's cursor loses nothing).
"""

import threading
import time
from collections import defaultdict

from django.conf import settings
from django.db import DatabaseError


class ActiveSubscriptions:
    def __init__(self):
        self._by_store: dict[int, tuple[int, ...]] = {}
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def of_stores(self, store_ids) -> list[int]:
        """The ids of the active subscriptions of these stores."""
        if time.monotonic() - self._read_at >= settings.WEBHOOK_REGISTRY_SECONDS:
            with self._lock:
                if time.monotonic() - self._read_at >= settings.WEBHOOK_REGISTRY_SECONDS:
                    self._read()
        by_store = self._by_store
        return [pk for store_id in store_ids for pk in by_store.get(store_id, ())]

    def read_again(self) -> None:
        self._read_at = float("-inf")

    def _read(self) -> None:
        from .models import WebhookSubscription

        try:
            rows = WebhookSubscription.objects.filter(is_active=True).values_list("store_id", "pk")
            by_store = defaultdict(list)
            for store_id, pk in rows:
                by_store[store_id].append(pk)
            self._by_store = {store_id: tuple(pks) for store_id, pks in by_store.items()}
        except DatabaseError:
            pass  # keep the last answer; the sweep covers what it misses
        self._read_at = time.monotonic()


active_subscriptions = ActiveSubscriptions()
