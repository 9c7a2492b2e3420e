"""Read-through cache of single stock levels (the body of GET .../stock/{sku}/).

- Reads try the cache and fall back to the database, then fill the cache.
- Every committed change refreshes the entry through ``stock_changed`` with the values
  the service committed, so the very next read sees them.
- Entries carry the level's version and are only ever replaced by a newer one, so a
  reader that loaded an old row cannot put it back after a writer's refresh, and two
  refreshes arriving out of order keep the newer. On Redis this compare-and-set is one
  Lua script; the local-memory cache of the embedded mode does it in Python.
- Keys include a generation number. A process that saw the cache fail starts a new
  generation before it uses the cache again, so an entry that may have missed a write
  made during the outage is not read after it.
- Cache errors never fail a request: reads go to the database, writes have committed.
  After one, the cache is skipped for a while (``inventory_site.cache_outage.Circuit``),
  which counts as an outage too: refreshes were skipped.
"""

import json
import logging
import threading

from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver

from inventory_site.api.gate import GenerationKeyedRead
from inventory_site.cache_outage import CACHE_ERRORS, OutageLog, cache_circuit, cache_error_event

from .metrics import CACHE_EVENTS

logger = logging.getLogger(__name__)
outage = OutageLog(logger, "stock cache")

GENERATION_KEY = "stock:generation"

# KEYS[1] generation key; ARGV[1] key prefix, ARGV[2] level key suffix.
READ_SCRIPT = """
local generation = redis.call('GET', KEYS[1]) or '0'
return {generation, redis.call('GET', ARGV[1] .. generation .. ARGV[2])}
"""
# KEYS[1] generation key; ARGV: key prefix, suffix, version, JSON body, TTL, generation
# the caller read (a fill made under an older generation is dropped), and "1" when an
# entry of the same version may be replaced (a refresh after a change that kept it).
WRITE_IF_NEWER_SCRIPT = """
local generation = redis.call('GET', KEYS[1]) or '0'
if ARGV[6] ~= '' and ARGV[6] ~= generation then return 0 end
local key = ARGV[1] .. generation .. ARGV[2]
local current = redis.call('GET', key)
if current then
  local version = tonumber(string.match(current, '^(%d+):'))
  local wanted = tonumber(ARGV[3])
  if version and (version > wanted or (version == wanted and ARGV[7] ~= '1')) then
    return 0
  end
end
redis.call('SET', key, ARGV[3] .. ':' .. ARGV[4], 'EX', ARGV[5])
return 1
"""

# The same for many entries: KEYS[1] generation key; ARGV: key prefix, TTL, "1" when an
# entry of the same version may be replaced, the generation the caller read ('' for
# any), then (suffix, version, JSON body) per entry. Returns the generation, then per
# entry 1 (written) or 0 (the same or a newer version is there); with a caller's
# generation that is no longer current nothing is written and every entry is -1.
WRITE_MANY_IF_NEWER_SCRIPT = """
local generation = redis.call('GET', KEYS[1]) or '0'
local results = {generation}
local moved = ARGV[4] ~= '' and ARGV[4] ~= generation
for i = 5, #ARGV, 3 do
  local key = ARGV[1] .. generation .. ARGV[i]
  local wanted = tonumber(ARGV[i + 1])
  local current = not moved and redis.call('GET', key)
  local version = current and tonumber(string.match(current, '^(%d+):'))
  if moved then
    results[#results + 1] = -1
  elseif not version or version < wanted or (version == wanted and ARGV[3] == '1') then
    redis.call('SET', key, ARGV[i + 1] .. ':' .. ARGV[i + 2], 'EX', ARGV[2])
    results[#results + 1] = 1
  else
    results[#results + 1] = 0
  end
end
return results
"""


def _suffix(store_id: int, product_id: int) -> str:
    return f":{store_id}:{product_id}"


class _RedisLevels:
    """Entries as ``"<version>:<json>"`` strings, compared and set atomically in Redis."""

    def __init__(self):
        from django_redis import get_redis_connection

        self.client = get_redis_connection("default")
        self.generation_key = cache.make_key(GENERATION_KEY)
        self.prefix = cache.make_key("stock:level:g")
        self.read_script = self.client.register_script(READ_SCRIPT)
        self.write_script = self.client.register_script(WRITE_IF_NEWER_SCRIPT)
        self.write_many_script = self.client.register_script(WRITE_MANY_IF_NEWER_SCRIPT)

    def read(self, store_id, product_id) -> tuple[str, dict | None]:
        return self.parse(
            *self.read_script(
                keys=[self.generation_key], args=[self.prefix, _suffix(store_id, product_id)]
            )
        )

    @staticmethod
    def parse(generation: bytes, raw: bytes | None) -> tuple[str, dict | None]:
        if raw is None:
            return generation.decode(), None
        return generation.decode(), json.loads(raw.split(b":", 1)[1])

    def keyed_read(self, store_id, product_id) -> GenerationKeyedRead:
        return GenerationKeyedRead(self.generation_key, self.prefix, _suffix(store_id, product_id))

    def write_if_newer(
        self, store_id, product_id, body: dict, generation: str = "", replace_equal=False
    ) -> bool:
        return bool(
            self.write_script(
                keys=[self.generation_key],
                args=[
                    self.prefix,
                    _suffix(store_id, product_id),
                    body["version"],
                    json.dumps(body),
                    settings.STOCK_CACHE_TTL,
                    generation,
                    "1" if replace_equal else "0",
                ],
            )
        )

    def generation(self) -> str:
        return (self.client.get(self.generation_key) or b"0").decode()

    def write_many_if_newer(
        self, bodies, replace_equal=False, generation: str = ""
    ) -> tuple[str, list[int]]:
        """``write_if_newer`` for many levels (by (store id, product id)), in ONE script
        call: one round trip however many entries. Returns the generation after it, and
        per entry 1 written, 0 the same or a newer version there, -1 ``generation`` (when
        given) no longer current."""
        args = [self.prefix, settings.STOCK_CACHE_TTL, "1" if replace_equal else "0", generation]
        for (store_id, product_id), body in bodies.items():
            args += [_suffix(store_id, product_id), body["version"], json.dumps(body)]
        now, *results = self.write_many_script(keys=[self.generation_key], args=args)
        return now.decode(), [int(result) for result in results]

    def new_generation(self) -> None:
        self.client.incr(self.generation_key)


class _LocalLevels:
    """The same rules on Django's cache API, for the single-process embedded mode; a lock
    makes the compare-and-set atomic among the threads of that process."""

    lock = threading.Lock()

    def read(self, store_id, product_id) -> tuple[str, dict | None]:
        generation = str(cache.get(GENERATION_KEY, 0))
        return generation, cache.get(f"stock:level:g{generation}{_suffix(store_id, product_id)}")

    def write_if_newer(
        self, store_id, product_id, body: dict, generation: str = "", replace_equal=False
    ) -> bool:
        with self.lock:
            current_generation = str(cache.get(GENERATION_KEY, 0))
            if generation and generation != current_generation:
                return False
            key = f"stock:level:g{current_generation}{_suffix(store_id, product_id)}"
            current = cache.get(key)
            if current is not None and (
                current["version"] > body["version"]
                or (current["version"] == body["version"] and not replace_equal)
            ):
                return False
            cache.set(key, body, settings.STOCK_CACHE_TTL)
            return True

    def generation(self) -> str:
        return str(cache.get(GENERATION_KEY, 0))

    def write_many_if_newer(
        self, bodies, replace_equal=False, generation: str = ""
    ) -> tuple[str, list[int]]:
        results = []
        for (store_id, product_id), body in bodies.items():
            if generation and generation != self.generation():
                results.append(-1)
                continue
            written = self.write_if_newer(
                store_id, product_id, body, generation, replace_equal=replace_equal
            )
            results.append(int(written))
        return self.generation(), results

    def new_generation(self) -> None:
        with self.lock:
            cache.set(GENERATION_KEY, cache.get(GENERATION_KEY, 0) + 1, None)


def _backend():
    if settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache":
        return _RedisLevels()
    return _LocalLevels()


class StockLevelCache:
    def __init__(self):
        self._levels = None

    @property
    def levels(self):
        if self._levels is None:
            self._levels = _backend()
        return self._levels

    def reset(self) -> None:
        """Forget the backend, to pick it anew from the CACHES setting."""
        self._levels = None

    def gate_read(self, store_id: int, product_id: int) -> GenerationKeyedRead | None:
        """How the API gate's round trip can read this level's entry along with the rate
        limits (``inventory_site.api.gate``); None when it cannot (the embedded mode's
        local cache, or an outage to recover from first)."""
        if outage.failing or not isinstance(self.levels, _RedisLevels):
            return None
        return self.levels.keyed_read(store_id, product_id)

    def read(self, store_id: int, product_id: int, load, prefetched=None) -> tuple[dict, bool]:
        """The level's body and whether it came from the cache; ``load()`` reads the
        database on a miss, and its result fills the cache. ``prefetched`` is what the
        gate read (``request.gate_read``), used when it read this very entry."""
        try:
            with cache_circuit:
                if self._recover_after_an_outage():
                    prefetched = None  # read under the generation just retired
                if prefetched and prefetched[0] == self.gate_read(store_id, product_id):
                    generation, body = _RedisLevels.parse(*prefetched[1:])
                else:
                    generation, body = self.levels.read(store_id, product_id)
        except CACHE_ERRORS as error:
            self._cache_failed(error, "stock reads go to the database")
            return load(), False
        if body is not None:
            CACHE_EVENTS.labels("stock", "hit").inc()
            return body, True
        CACHE_EVENTS.labels("stock", "miss").inc()
        body = load()
        try:
            with cache_circuit:
                filled = self.levels.write_if_newer(store_id, product_id, body, generation)
            if filled:
                CACHE_EVENTS.labels("stock", "fill").inc()
        except CACHE_ERRORS as error:
            self._cache_failed(error, "stock reads go to the database")
        return body, False

    def fill_many(self, load, generation: str | None = None) -> tuple[int, int, str]:
        """Fill the cache with many levels as reads fill it, in one round trip (one call
        of the script ``refresh_many`` uses, comparing versions as every fill does):
        ``load()`` returns [(store id, product id, body), ...] read from the database,
        and each is written unless the cache holds the same or a newer version (the
        compare-and-set of every fill). ``load`` runs after the cache's generation was
        read (``generation``, what the previous call returned; else it is read first),
        and a fill is dropped if the generation moved on meanwhile (a process recovered
        from an outage): then the levels are read and written again.

        Returns (written, present, the generation after the writes: pass it to the next
        call). Cache errors raise (``CACHE_ERRORS``), counted and logged first."""
        results: list[int] = []
        try:
            with cache_circuit:
                if self._recover_after_an_outage() or generation is None:
                    generation = self.levels.generation()
                for _ in range(3):
                    bodies = {(store_id, product_id): body for store_id, product_id, body in load()}
                    now, results = self.levels.write_many_if_newer(bodies, generation=generation)
                    if -1 not in results:
                        break
                    generation = now
        except CACHE_ERRORS as error:
            self._cache_failed(error, "the levels were not cached")
            raise
        written, present = results.count(1), results.count(0)
        CACHE_EVENTS.labels("stock", "fill").inc(written)
        return written, present, now

    def refresh(self, store_id: int, product_id: int, body: dict) -> None:
        """Put a committed level in place of what the cache holds, unless it holds a newer
        version already. An entry of the same version is replaced: a change that keeps
        the version (a new reorder point) must still show. (Two such changes whose
        refreshes cross can leave the earlier one cached, until STOCK_CACHE_TTL.)"""
        try:
            with cache_circuit:
                self._recover_after_an_outage()
                self.levels.write_if_newer(store_id, product_id, body, replace_equal=True)
            CACHE_EVENTS.labels("stock", "invalidation").inc()
        except CACHE_ERRORS as error:
            self._cache_failed(error, "entries from before the outage are dropped after it")

    def refresh_many(self, bodies: dict[tuple[int, int], dict]) -> None:
        """``refresh`` for many levels, keyed by (store id, product id), in one round
        trip: a bulk batch refreshes its thousand levels at once."""
        if not bodies:
            return
        try:
            with cache_circuit:
                self._recover_after_an_outage()
                self.levels.write_many_if_newer(bodies, replace_equal=True)
            CACHE_EVENTS.labels("stock", "invalidation").inc(len(bodies))
        except CACHE_ERRORS as error:
            self._cache_failed(error, "entries from before the outage are dropped after it")

    def drop_all(self) -> None:
        """Retire every cached level by starting a new generation of keys: after a change
        too large to refresh level by level (a seeding of millions of levels), whose
        pairs may be cached as zero levels."""
        try:
            with cache_circuit:
                self._recover_after_an_outage()
                self.levels.new_generation()
        except CACHE_ERRORS as error:
            self._cache_failed(error, "entries from before the outage are dropped after it")

    def _cache_failed(self, error, consequence: str) -> None:
        CACHE_EVENTS.labels("stock", cache_error_event(error)).inc()
        outage.failed(error, consequence)

    def _recover_after_an_outage(self) -> bool:
        """After this process saw the cache fail, start a new generation of keys before
        anything else: a refresh may have been lost meanwhile. Raises while it is down.
        True when it did."""
        if outage.failing:
            self.levels.new_generation()
            outage.succeeded()
            return True
        return False


stock_level_cache = StockLevelCache()


@receiver(setting_changed)
def _forget_backend_when_caches_change(setting, **kwargs):
    if setting == "CACHES":
        stock_level_cache.reset()
