"""The one Redis round trip an API request makes before its view runs: count its rate
limits (per client address and, when the token is known to this process, per user) and
read the lookup cache's generations (``inventory_site.lookup_cache``), which tell whether
the process may answer token, role and product lookups from memory.

A warm process therefore authenticates, checks the role and finds the product without
another call, and a view may have the same round trip read the cache entry it will want
(``ApiView.cached_entry_wanted``): a cache-hit stock read is this one round trip. The
counters are django-ratelimit's (same keys, windows and expiry, counted with INCR in a
Lua script instead of ``add`` then ``incr``), so ``get_usage`` and the login throttles
read and count the very same numbers.

Embedded mode (local-memory cache) counts with ``add`` then ``incr``, as django-ratelimit
does, and reads no entry ahead.
"""

import functools
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver
from django_ratelimit import ALL
from django_ratelimit.core import (
    EXPIRATION_FUDGE,
    _get_ip,
    _get_window,
    _make_cache_key,
    _split_rate,
)
from rest_framework import authentication
from rest_framework.exceptions import Throttled

from inventory_site.cache_outage import CACHE_ERRORS, cache_circuit
from inventory_site.lookup_cache import GENERATION_KEYS, fresh_start, lookups, read_generations

from .ratelimits import client_ip, outage

# KEYS: the two lookup generation keys, the counters, and (optional) the generation key
# of a cached entry to read. ARGV: where a missing lookup generation starts
# (lookup_cache.fresh_start), the number of counters, each counter's expiry in seconds,
# then (with the optional key) the entry key's prefix and suffix, between which its
# generation goes (the shape of stock.cache's keys).
# Returns the generations' values, each counter's count, then the entry's generation and
# value (false when absent).
GATE_SCRIPT = """
local answer = {}
for i = 1, 2 do
  answer[i] = redis.call('GET', KEYS[i]) or redis.call('INCRBY', KEYS[i], ARGV[1])
end
local counters = tonumber(ARGV[2])
for i = 1, counters do
  local count = redis.call('INCR', KEYS[2 + i])
  if count == 1 then redis.call('EXPIRE', KEYS[2 + i], ARGV[2 + i]) end
  answer[2 + i] = count
end
if #KEYS > 2 + counters then
  local generation = redis.call('GET', KEYS[#KEYS]) or '0'
  answer[#answer + 1] = generation
  answer[#answer + 1] = redis.call('GET', ARGV[3 + counters] .. generation .. ARGV[4 + counters])
end
return answer
"""


@dataclass(frozen=True)
class Counter:
    """One django-ratelimit counter: ``group`` counting ``value`` at ``rate``."""

    group: str
    value: str
    rate: str

    @property
    def limit(self) -> int:
        return _rate(self.rate)[0]

    @property
    def period(self) -> int:
        return _rate(self.rate)[1]

    def window(self) -> int:
        return _get_window(self.value, self.period)

    def cache_key(self, window: int) -> str:
        return _make_cache_key(self.group, window, self.rate, self.value, ALL)


@functools.lru_cache(maxsize=32)
def _rate(rate: str) -> tuple[int, int]:
    """(limit, period in seconds) of a "<count>/<period>" rate; parsed once per rate."""
    return _split_rate(rate)


def client_key(request) -> str:
    """django-ratelimit's value of the "ip" key: the client address, masked (an IPv6
    address to its /64 by default). A plain IPv4 address under the default /32 mask is
    its own network address; only other addresses pay for the ipaddress module."""
    address = client_ip(request)
    if address and ":" not in address and getattr(settings, "RATELIMIT_IPV4_MASK", 32) == 32:
        return address
    return _get_ip(request)


@dataclass(frozen=True)
class GenerationKeyedRead:
    """A cached entry whose key is ``prefix + <generation> + suffix``, the generation
    being the value of ``generation_key`` (full Redis keys)."""

    generation_key: str
    prefix: str
    suffix: str


@dataclass(frozen=True)
class Usage:
    count: int
    limit: int
    window: int

    def refuse_if_over(self, now: int) -> None:
        if self.count > self.limit:
            raise Throttled(wait=max(self.window - now, 1))


class _RedisGate:
    def __init__(self):
        from django_redis import get_redis_connection

        self.script = get_redis_connection("default").register_script(GATE_SCRIPT)
        self.generation_keys = [cache.make_key(key) for key in GENERATION_KEYS]

    def run(self, counters: list[Counter], entry=None) -> tuple[list, list[Usage], tuple | None]:
        windows = [counter.window() for counter in counters]
        keys = [
            *self.generation_keys,
            *(cache.make_key(c.cache_key(w)) for c, w in zip(counters, windows, strict=True)),
        ]
        args = [
            fresh_start(),
            len(counters),
            *(counter.period + EXPIRATION_FUDGE for counter in counters),
        ]
        if entry is not None:
            keys.append(entry.generation_key)
            args += [entry.prefix, entry.suffix]
        answer = self.script(keys=keys, args=args)
        counts = answer[2 : 2 + len(counters)]
        usages = [
            Usage(int(count), counter.limit, window)
            for counter, count, window in zip(counters, counts, windows, strict=True)
        ]
        read = tuple(answer[2 + len(counters) :]) if entry is not None else None
        return answer[:2], usages, read


class _LocalGate:
    """Embedded mode: django-ratelimit's own counting on the local-memory cache."""

    def run(self, counters: list[Counter], entry=None) -> tuple[list, list[Usage], None]:
        generations = read_generations()
        usages = []
        for counter in counters:
            window = counter.window()
            key = counter.cache_key(window)
            if cache.add(key, 1, counter.period + EXPIRATION_FUDGE):
                count = 1
            else:
                count = cache.incr(key)
            usages.append(Usage(count, counter.limit, window))
        return generations, usages, None


_gate = None


def _backend():
    global _gate
    if _gate is None:
        redis = settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"
        _gate = _RedisGate() if redis else _LocalGate()
    return _gate


def reset() -> None:
    """Forget the backend, to pick it anew from the CACHES setting."""
    global _gate
    _gate = None


@receiver(setting_changed)
def _forget_backend_when_caches_change(setting, **kwargs):
    if setting == "CACHES":
        reset()


def user_counter(user_id) -> Counter:
    return Counter("api-user", str(user_id), settings.API_RATE_PER_USER)


def open_gate(request, entry_to_read=None) -> None:
    """Before authentication: count the client address (and the user, when this process
    already knows whose the token is) and read the lookup generations, in one round
    trip. Raises Throttled when the address is over its limit.

    ``request.gate_user`` records the user counted and their usage (or that the cache
    could not count), for ``enforce_user_limit`` after authentication.

    ``entry_to_read(user_id)``, if given, names a cached entry the view will want (a
    ``GenerationKeyedRead``, or None), guessed from what this process holds in memory;
    the same round trip reads it, into ``request.gate_read`` as (entry, generation,
    value). The view uses it only once its own checks have named the same entry.
    """
    request.gate_user = request.gate_read = None
    counters = []
    user_id = token_owner_known_here(request)
    if settings.RATELIMIT_ENABLE:
        counters.append(Counter("api-ip", client_key(request), settings.API_RATE_PER_IP))
        if user_id is not None:
            counters.append(user_counter(user_id))
    entry = entry_to_read(user_id) if entry_to_read and user_id is not None else None
    answer = _count(counters, entry)
    if answer is None:
        lookups.forget_generations()
        request.gate_user = (UNCOUNTED, None)
        return
    generations, usages, read = answer
    lookups.use_generations(generations)
    if read is not None:
        request.gate_read = (entry, *read)
    if usages:
        usages[0].refuse_if_over(_now())
    if len(usages) > 1:
        request.gate_user = (counters[1].value, usages[1])


def enforce_user_limit(request) -> None:
    """After authentication: refuse a user over their limit, counting them now unless the
    gate already did (a session, or a token this process had not seen)."""
    user = request.user
    if not (settings.RATELIMIT_ENABLE and user.is_authenticated):
        return
    counted = getattr(request, "gate_user", None) or (None, None)
    if counted[0] == UNCOUNTED:
        return
    if counted[0] != str(user.pk):
        answer = _count([user_counter(user.pk)], None)
        if answer is None:
            return
        counted = (str(user.pk), answer[1][0])
    counted[1].refuse_if_over(_now())


UNCOUNTED = ""  # the cache failed and RATELIMIT_FAIL_OPEN let the request through


def _count(counters: list[Counter], entry) -> tuple | None:
    """Count ``counters``, read the generations (and ``entry``); None when the cache
    failed and the request goes on uncounted (RATELIMIT_FAIL_OPEN), Throttled when it
    must not."""
    try:
        with cache_circuit:
            answer = _backend().run(counters, entry)
    except CACHE_ERRORS as error:
        if not counters:
            return None
        outage.failed(
            error,
            "letting requests through" if settings.RATELIMIT_FAIL_OPEN else "refusing requests",
        )
        if settings.RATELIMIT_FAIL_OPEN:
            return None
        raise Throttled(wait=1) from error
    outage.succeeded()
    return answer


def token_owner_known_here(request) -> int | None:
    """The id of the user whose token the request carries, if this process has it in
    memory (of whatever generation: only a rate-limit counter is named with it)."""
    from accounts.authentication import cached_token_user_id

    header = authentication.get_authorization_header(request).split()
    if len(header) != 2 or header[0].lower() != b"token":
        return None
    try:
        key = header[1].decode("ascii")
    except UnicodeDecodeError:
        return None
    return cached_token_user_id(key)


def _now() -> int:
    return int(time.time())
