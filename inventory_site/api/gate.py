"""The one Redis round trip an API request makes before its view runs: count its rate
limits (per client address and, when the token is known to this process, per user) and
read the lookup cache's generations (``inventory_site.lookup_cache``), which tell whether
the process may answer token, role and product lookups from memory.

A warm process therefore authenticates, checks the role and finds the product without
another call; a cache-hit stock read adds only its cache read. The counters are
django-ratelimit's (same keys, windows and expiry, counted with INCR in a Lua script
instead of ``add`` then ``incr``), so ``get_usage`` and the login throttles read and
count the very same numbers.

Embedded mode (local-memory cache) counts through django-ratelimit itself.
"""

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
from inventory_site.lookup_cache import GENERATION_KEYS, lookups

from .ratelimits import outage

# KEYS: the generation keys, then the counters; ARGV: each counter's expiry in seconds.
# Returns the generations' values, then each counter's count.
GATE_SCRIPT = """
local answer = {}
local generations = #KEYS - #ARGV
for i = 1, generations do
  answer[i] = redis.call('GET', KEYS[i]) or '0'
end
for i = 1, #ARGV do
  local count = redis.call('INCR', KEYS[generations + i])
  if count == 1 then redis.call('EXPIRE', KEYS[generations + i], ARGV[i]) end
  answer[generations + i] = count
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
        return _split_rate(self.rate)[0]

    @property
    def period(self) -> int:
        return _split_rate(self.rate)[1]

    def window(self) -> int:
        return _get_window(self.value, self.period)

    def cache_key(self, window: int) -> str:
        return _make_cache_key(self.group, window, self.rate, self.value, ALL)


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

    def run(self, counters: list[Counter]) -> tuple[list, list[Usage]]:
        windows = [counter.window() for counter in counters]
        answer = self.script(
            keys=[
                *self.generation_keys,
                *(cache.make_key(c.cache_key(w)) for c, w in zip(counters, windows, strict=True)),
            ],
            args=[counter.period + EXPIRATION_FUDGE for counter in counters],
        )
        generations = answer[: len(self.generation_keys)]
        counts = answer[len(self.generation_keys) :]
        usages = [
            Usage(int(count), counter.limit, window)
            for counter, count, window in zip(counters, counts, windows, strict=True)
        ]
        return generations, usages


class _LocalGate:
    """Embedded mode: django-ratelimit's own counting on the local-memory cache."""

    def run(self, counters: list[Counter]) -> tuple[list, list[Usage]]:
        values = cache.get_many(GENERATION_KEYS)
        usages = []
        for counter in counters:
            window = counter.window()
            key = counter.cache_key(window)
            if cache.add(key, 1, counter.period + EXPIRATION_FUDGE):
                count = 1
            else:
                count = cache.incr(key)
            usages.append(Usage(count, counter.limit, window))
        return [values.get(key) for key in GENERATION_KEYS], usages


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


def open_gate(request) -> None:
    """Before authentication: count the client address (and the user, when this process
    already knows whose the token is) and read the lookup generations, in one round
    trip. Raises Throttled when the address is over its limit.

    ``request.gate_user`` records the user counted and their usage (or that the cache
    could not count), for ``enforce_user_limit`` after authentication.
    """
    request.gate_user = None
    counters = []
    if settings.RATELIMIT_ENABLE:
        counters.append(Counter("api-ip", _get_ip(request), settings.API_RATE_PER_IP))
        user_id = token_owner_known_here(request)
        if user_id is not None:
            counters.append(user_counter(user_id))
    answer = _count(counters)
    if answer is None:
        lookups.forget_generations()
        request.gate_user = (UNCOUNTED, None)
        return
    generations, usages = answer
    lookups.use_generations(generations)
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
        answer = _count([user_counter(user.pk)])
        if answer is None:
            return
        counted = (str(user.pk), answer[1][0])
    counted[1].refuse_if_over(_now())


UNCOUNTED = ""  # the cache failed and RATELIMIT_FAIL_OPEN let the request through


def _count(counters: list[Counter]) -> tuple[list, list[Usage]] | None:
    """Count ``counters`` and read the generations; None when the cache failed and the
    request goes on uncounted (RATELIMIT_FAIL_OPEN), Throttled when it must not."""
    try:
        with cache_circuit:
            answer = _backend().run(counters)
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
