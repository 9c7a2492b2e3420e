"""Redis failing: one log line per outage, not one per request, and a circuit breaker so
that a Redis that hangs costs one timeout, not one per call.

A Redis that refuses connections fails at once. One that accepts them and never answers
(a stalled server, a dead host behind a load balancer, a full network buffer) costs every
call its socket timeout, and a request makes several calls: two rate-limit counts and a
cache read, a refresh after a write, the audit relay's broker message. ``Circuit`` is the
one place that remembers, per process, that Redis did not answer: every user of the
cache (``stock.cache``, ``catalog.cache``, the rate limits) and of the broker (the audit
relay send) runs its Redis calls inside ``with cache_circuit:`` (``broker_circuit``),
which skips them for ``CACHE_CIRCUIT_OPEN_SECONDS`` after a failure.
"""

import logging
import threading
import time

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)


class CircuitOpen(Exception):
    """Redis was not asked: it did not answer moments ago (see ``Circuit``)."""


# What a cache user catches and answers from the database instead: Redis failing, or the
# circuit saying it failed moments ago.
CACHE_ERRORS = (ConnectionInterrupted, RedisError, OSError, CircuitOpen)


def cache_error_event(error: BaseException) -> str:
    """The ``inventory_cache_events_total`` event of a caught cache error."""
    return "skipped" if isinstance(error, CircuitOpen) else "error"


_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def redis_unreachable(error: BaseException) -> bool:
    """Redis did not answer (refused, reset, timed out); an error reply is an answer.
    django-redis wraps what it catches in ConnectionInterrupted."""
    if isinstance(error, ConnectionInterrupted):
        return isinstance(error.__cause__, _UNREACHABLE)
    return isinstance(error, _UNREACHABLE)


class Circuit:
    """Per process: whether to skip a Redis that just failed, used as ``with circuit:``.

    - Closed: the block runs. If it raises an error ``opens_on`` accepts, the circuit
      opens.
    - Open: for ``CACHE_CIRCUIT_OPEN_SECONDS`` every block raises CircuitOpen at once,
      instead of waiting for its own timeout.
    - Half-open (the period is over): the next block runs as the one trial; the blocks
      of other threads meanwhile are skipped. The trial's success closes the circuit;
      its failure opens it for another period.

    CircuitOpen is one of CACHE_ERRORS, so a skipped block falls back exactly as a failed
    one does, and its OutageLog records an outage: the stock and catalog caches start a
    new generation of keys before they use the cache again, since refreshes were skipped.
    Any block that completes closes the circuit: Redis answered it.
    """

    def __init__(self, name: str, *, opens_on=redis_unreachable):
        self.name, self.opens_on = name, opens_on
        self._lock = threading.Lock()
        self._open_until: float | None = None  # None: closed
        self._trial: tuple[int, float] | None = None  # (thread, until) of the trial block

    @property
    def closed(self) -> bool:
        return self._open_until is None

    def __enter__(self):
        if self._open_until is None:  # closed: no lock on the common path
            return self
        now, thread = time.monotonic(), threading.get_ident()
        with self._lock:
            if self._open_until is None:
                return self
            if now < self._open_until:
                raise CircuitOpen(f"{self.name} skipped: it did not answer moments ago")
            if self._trial and self._trial[0] != thread and now < self._trial[1]:
                raise CircuitOpen(f"{self.name} skipped: another request is trying it")
            # A trial that never reports (its thread died) is given up after a period.
            self._trial = (thread, now + max(self._open_seconds(), 1.0))
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None:
            self._close()
        elif isinstance(error, CircuitOpen):
            pass
        elif self.opens_on(error):
            self._open(error)
        else:  # an error that says nothing about Redis: let the next block try
            with self._lock:
                if self._trial and self._trial[0] == threading.get_ident():
                    self._trial = None
        return False

    def failed(self, error: BaseException) -> None:
        """A failure met outside a ``with`` block: it opens the circuit as one inside
        would have."""
        if self.opens_on(error):
            self._open(error)

    def reset(self) -> None:
        """Close the circuit (a new configuration, a test)."""
        with self._lock:
            self._open_until, self._trial = None, None

    def _open(self, error: BaseException) -> None:
        seconds = self._open_seconds()
        with self._lock:
            was_closed = self._open_until is None
            self._open_until, self._trial = time.monotonic() + seconds, None
        if was_closed:
            logger.warning(
                "%s did not answer (%r): skipped for %g s, then tried again by one request",
                self.name,
                error,
                seconds,
            )

    def _close(self) -> None:
        if self._open_until is None:
            return
        with self._lock:
            was_open = self._open_until is not None
            self._open_until, self._trial = None, None
        if was_open:
            logger.warning("%s answers again: no longer skipped", self.name)

    @staticmethod
    def _open_seconds() -> float:
        return settings.CACHE_CIRCUIT_OPEN_SECONDS


cache_circuit = Circuit("the cache (Redis)")
# Sending a task fails with kombu's own errors, whatever the broker: any error counts.
broker_circuit = Circuit("the Celery broker", opens_on=lambda error: isinstance(error, Exception))


def reset_circuits() -> None:
    cache_circuit.reset()
    broker_circuit.reset()


@receiver(setting_changed)
def _close_the_circuit_of_a_new_cache(setting, **kwargs):
    if setting == "CACHES":
        cache_circuit.reset()


class OutageLog:
    """Remembers, per process, whether the cache was failing, and logs only the changes."""

    def __init__(self, logger: logging.Logger, what: str):
        self.logger, self.what, self.failing = logger, what, False

    def failed(self, error: Exception, consequence: str) -> None:
        if not self.failing:
            self.failing = True
            self.logger.error(
                "%s: the cache is unreachable (%r); %s", self.what, error, consequence
            )

    def succeeded(self) -> bool:
        """Record a success; True when it ends an outage."""
        if self.failing:
            self.failing = False
            self.logger.warning("%s: the cache answers again", self.what)
            return True
        return False
