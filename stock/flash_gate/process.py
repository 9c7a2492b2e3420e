"""What one process knows of the gate without asking Redis: which levels are gated (read
again at most every ``FLASH_GATE_REGISTRY_SECONDS``) and which of them it saw sold out
(for ``FLASH_GATE_SOLD_OUT_SECONDS``, or until it hears of a refill itself).

So a purchase of a level that is not gated makes no gate call at all, and most sold-out
answers of a gated one make none either: ten thousand buyers of a sold-out level cost
each process one Redis call per period, not one per buyer.
"""

import logging
import threading
import time

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from inventory_site.cache_outage import CACHE_ERRORS, OutageLog, cache_circuit

from .tokens import RedisTokens, member

logger = logging.getLogger(__name__)
outage = OutageLog(logger, "flash-sale gate")


class ProcessView:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self._tokens: RedisTokens | None = None
        self._backend_known = False
        self.gated: frozenset[str] = frozenset()
        self._read_at = float("-inf")
        self.sold_out: dict[str, float] = {}
        self._reconcile_asked_at = float("-inf")

    @property
    def tokens(self) -> RedisTokens | None:
        """The Redis scripts, or None in the embedded mode (no Redis: no gate)."""
        if not self._backend_known:
            if settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache":
                self._tokens = RedisTokens()
            self._backend_known = True
        return self._tokens

    def gated_members(self, members: list[str]) -> list[str]:
        """Which of ``members`` are gated, as far as this process knows (read again from
        Redis once the last reading is a period old). Redis failing: none (fail open)."""
        tokens = self.tokens
        if tokens is None:
            return []
        now = time.monotonic()
        if now - self._read_at >= settings.FLASH_GATE_REGISTRY_SECONDS:
            self._read_registry(tokens, now)
        return [value for value in members if value in self.gated]

    def _read_registry(self, tokens: RedisTokens, now: float) -> None:
        with self._lock:
            if now - self._read_at < settings.FLASH_GATE_REGISTRY_SECONDS:
                return  # another thread just read it
            try:
                with cache_circuit:
                    seeded, gated = tokens.registry()
            except CACHE_ERRORS as error:
                outage.failed(error, "gated levels go to the database until it answers")
                self.gated, self._read_at = frozenset(), now
                return
            self.gated, self._read_at = frozenset(gated), now
        if outage.succeeded() or not seeded:
            # Tokens may have missed changes while Redis was away, or Redis lost them.
            self.ask_for_reconcile()

    def read_again(self) -> None:
        """This process changed the registry: its next question reads it again."""
        self._read_at = float("-inf")

    def answered(self) -> None:
        """A gate call succeeded: if it ends an outage, the tokens are reseeded."""
        if outage.succeeded():
            self.ask_for_reconcile()

    def failed(self, error: BaseException) -> None:
        outage.failed(error, "the gate fails open: buyers go to the database")

    def ask_for_reconcile(self) -> None:
        """Queue a reseed of every gate from the database, at most once a period."""
        now = time.monotonic()
        if now - self._reconcile_asked_at < settings.FLASH_GATE_RECONCILE_SECONDS:
            return
        self._reconcile_asked_at = now
        from ..tasks import reconcile_flash_gates
        from .services import send_task

        send_task(reconcile_flash_gates)

    def forget(self, value: str) -> None:
        """The level is gated no more, or this process has not seen it seeded."""
        self.sold_out.pop(value, None)

    def is_sold_out(self, value: str) -> bool:
        until = self.sold_out.get(value)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        self.sold_out.pop(value, None)
        return False

    def saw_tokens(self, value: str, tokens: int) -> None:
        if tokens > 0:
            self.sold_out.pop(value, None)
        elif tokens == 0:
            self.sold_out[value] = time.monotonic() + settings.FLASH_GATE_SOLD_OUT_SECONDS


view = ProcessView()


@receiver(setting_changed)
def _forget_what_a_new_cache_holds(setting, **kwargs):
    if setting in ("CACHES", "FLASH_GATE_REGISTRY_SECONDS"):
        view.reset()


__all__ = ["member", "view"]
