"""The lookups every request makes before it can do anything: token to user, user and
store code to store and role, SKU to product. Cached, so that a cache-hit stock read
touches no database at all.

Two layers, both keyed by two generation numbers:

- ``access``: bumped after any change to who may do what commits (a token deleted or
  rotated, a user saved or deleted, permissions or groups changed, a store or membership
  saved or deleted; see ``accounts.receivers`` and ``stores.receivers``);
- ``catalog``: bumped after any product change commits (``catalog.cache``).

A bump retires every entry at once: Redis keys carry the generations, so a reader that
loaded a row before the change can only fill a key nobody reads any more.

The process-local layer (a bounded dict) is trusted only for a request that has read
the current generations from Redis: an API request reads them in the round trip that
counts its rate limits (``inventory_site.api.gate``), so a warm process answers every
lookup from memory and still sees a change on the very next request. Anything else
(the admin, the pages, a command) reads the generations itself once per context.

Only what exists is cached: an unknown token, store or SKU is asked of the database each
time (the rate limits bound how often), so a row created by a path that sends no signal
(``bulk_create``) is never hidden behind a cached "not found".

When Redis fails, lookups go to the database and the local layer is not used; the
process that saw the failure starts new generations before it trusts the cache again,
since a change made meanwhile could not retire anything.
"""

import hashlib
import logging
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.core.cache import cache

from inventory_site.cache_outage import CACHE_ERRORS, OutageLog, cache_circuit, cache_error_event
from stock.metrics import CACHE_EVENTS

logger = logging.getLogger(__name__)
outage = OutageLog(logger, "lookup cache")

ACCESS_GENERATION_KEY = "access:generation"
CATALOG_GENERATION_KEY = "catalog:generation"  # catalog.cache bumps it
GENERATION_KEYS = (ACCESS_GENERATION_KEY, CATALOG_GENERATION_KEY)

# The generations this request has read from Redis ("<access>.<catalog>"), or None when
# nothing has read them yet in this context.
_request_generations: ContextVar[str | None] = ContextVar("lookup_generations", default=None)

_MISSING = object()


def fresh_start() -> int:
    """Where a missing generation starts: microseconds since the epoch. A generation lost
    with Redis's data (a restart without persistence, a flush, an eviction) so starts
    again above every value it had, never at one some process still holds entries of."""
    return time.time_ns() // 1000


def read_generations() -> list[int]:
    """The values of GENERATION_KEYS through Django's cache API, a missing one started
    at ``fresh_start()`` (the gate's Lua script does the same in Redis)."""
    values = cache.get_many(GENERATION_KEYS)
    for key in GENERATION_KEYS:
        if key not in values:
            cache.add(key, fresh_start(), None)
            values[key] = cache.get(key)
    return [int(values[key]) for key in GENERATION_KEYS]


def bump(generation_key: str) -> int:
    """Start a new generation of ``generation_key``; returns it."""
    cache.add(generation_key, fresh_start(), None)
    return cache.incr(generation_key)


class LookupCache:
    """See the module docstring. ``get(kind, key, load)`` answers ``load()``'s value,
    which must be plain data (it is pickled into Redis and shared between threads);
    None means "does not exist" and is never cached."""

    def __init__(self, local_size: int = 20_000):
        self.local_size = local_size
        self._local: dict[tuple[str, str], tuple[str, float, object]] = {}
        self._lock = threading.Lock()
        # The highest generations this process has seen: it never trusts lower ones.
        self._highest = (0,) * len(GENERATION_KEYS)

    # --- Generations -----------------------------------------------------------------

    @contextmanager
    def request_scope(self):
        """A request's lookups trust only the generations read during the request (a
        thread serves many requests; its context outlives each of them)."""
        token = _request_generations.set(None)
        try:
            yield
        finally:
            _request_generations.reset(token)

    def use_generations(self, values) -> None:
        """This request read GENERATION_KEYS' ``values`` (in its gate round trip, which
        starts missing ones at ``fresh_start()``)."""
        _request_generations.set(None)
        try:
            with cache_circuit:
                if not self._recovered():
                    _request_generations.set(self._trusted(values))
        except CACHE_ERRORS as error:
            self.failed(error)

    def forget_generations(self) -> None:
        """The gate could not read them (Redis failing): lookups go to the database."""
        _request_generations.set(None)

    def _current_generations(self) -> str | None:
        generations = _request_generations.get()
        if generations is not None:
            return generations
        try:
            with cache_circuit:
                if self._recovered():
                    return None
                return self._trusted(read_generations())
        except CACHE_ERRORS as error:
            self.failed(error)
            return None

    def _trusted(self, values) -> str | None:
        """The generations as one string, or None when one is lower than this process
        has seen, and this request loads its lookups from the database: another thread
        has just seen a newer one, or Redis went back in time (an old snapshot
        restored), in which case new generations start above all it had (raises while
        Redis fails)."""
        seen = tuple(int(value) for value in values)
        if any(now < before for now, before in zip(seen, self._highest, strict=True)):
            current = read_generations()
            for key, now, before in zip(GENERATION_KEYS, current, self._highest, strict=True):
                if now < before:
                    cache.incr(key, before - now + 1)
            return None
        self._highest = tuple(map(max, seen, self._highest))
        return ".".join(map(str, seen))

    def _recovered(self) -> bool:
        """After this process saw Redis fail, start new generations (both: the catalog's
        bump may have failed too) before anything else (raises while Redis still
        fails); True when that just happened."""
        if not outage.failing:
            return False
        self._highest = tuple(bump(key) for key in GENERATION_KEYS)
        outage.succeeded()
        self.clear_local()
        return True

    # --- Lookups ---------------------------------------------------------------------

    def get(self, kind: str, key: str, load):
        generations = self._current_generations()
        if generations is None:
            return load()
        local_key = (kind, key)
        found = self._local.get(local_key)
        if found is not None and found[0] == generations and found[1] > time.time():
            return found[2]  # not counted: the hot path pays for no metric here
        redis_key = f"lookup:g{generations}:{kind}:{_digest(key)}"
        try:
            with cache_circuit:
                entry = cache.get(redis_key)  # (expires at, value)
        except CACHE_ERRORS as error:
            self.failed(error)
            return load()
        if entry is None:
            CACHE_EVENTS.labels("lookup", "miss").inc()
            value = load()
            if value is None:
                return None
            entry = (time.time() + settings.LOOKUP_CACHE_TTL, value)
            try:
                with cache_circuit:
                    cache.set(redis_key, entry, settings.LOOKUP_CACHE_TTL)
            except CACHE_ERRORS as error:
                self.failed(error)
                return value
        self._remember(local_key, generations, entry)
        return entry[1]

    def forget(self, kind: str, key: str) -> None:
        """Drop one entry from this process's memory (a token that failed to
        authenticate, so that ``peek`` no longer names its former user)."""
        self._local.pop((kind, key), None)

    def peek(self, kind: str, key: str):
        """The locally cached value, whatever its generation (None if absent): good
        enough to name a rate-limit counter before the generations are read."""
        found = self._local.get((kind, key))
        return None if found is None else found[2]

    def _remember(self, local_key, generations: str, entry: tuple[float, object]) -> None:
        with self._lock:
            if len(self._local) >= self.local_size:
                self._local.clear()
            # Expires with the Redis entry (LOOKUP_CACHE_TTL after the database read),
            # so that a change whose bump was lost (Redis failed just then) stops being
            # hidden by then in any case.
            self._local[local_key] = (generations, *entry)

    def clear_local(self) -> None:
        with self._lock:
            self._local.clear()

    def failed(self, error) -> None:
        """Redis failed: lookups go to the database, and new generations start before
        the cache is trusted again (a bump may have been lost)."""
        CACHE_EVENTS.labels("lookup", cache_error_event(error)).inc()
        outage.failed(error, "lookups go to the database")


def fields_of(instance, *, leave_out=frozenset()) -> dict:
    """A model instance's column values as plain data, for a lookup entry."""
    return {
        field.attname: getattr(instance, field.attname)
        for field in instance._meta.concrete_fields
        if field.attname not in leave_out
    }


def instance_from(model, fields: dict):
    """A fresh instance of ``model`` from ``fields_of``'s data (every request gets its own,
    as if loaded from the database; a field left out is deferred: reading it queries)."""
    return model.from_db("default", list(fields), list(fields.values()))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def access_changed() -> None:
    """Retire every cached token, user and role (run after the change commits)."""
    try:
        with cache_circuit:
            bump(ACCESS_GENERATION_KEY)
        CACHE_EVENTS.labels("lookup", "invalidation").inc()
    except CACHE_ERRORS as error:
        # The process bumps the generation before it uses the cache again; other
        # processes drop what they hold after LOOKUP_CACHE_TTL.
        lookups.failed(error)
    lookups.clear_local()
    # The rest of this request reads the new generations too.
    _request_generations.set(None)


lookups = LookupCache()
