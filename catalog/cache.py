"""Cached product detail and list responses.

Every key carries the catalog's generation number, bumped after any product change
commits: a reader that loaded a product before the change can only fill a key of the
old generation, which nobody reads any more. Cache errors fall back to the database,
and a process that saw them (or skipped the cache after them, see
``inventory_site.cache_outage.Circuit``) bumps the generation before it reads the cache
again.
"""

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache

from inventory_site.cache_outage import (
    CACHE_ERRORS,
    OutageLog,
    cache_circuit,
    cache_error_event,
)
from inventory_site.lookup_cache import bump, lookups
from stock.metrics import CACHE_EVENTS

logger = logging.getLogger(__name__)
outage = OutageLog(logger, "catalog cache")

GENERATION_KEY = "catalog:generation"


def cached_response_body(name: str, load):
    """The body cached under ``name`` for the current catalog generation, or ``load()``."""
    try:
        with cache_circuit:
            if outage.failing:
                # A product change during the outage may not have retired the old answers.
                _bump_generation()
                outage.succeeded()
            generation = cache.get(GENERATION_KEY, 0)
            key = f"catalog:g{generation}:{hashlib.sha256(name.encode()).hexdigest()}"
            body = cache.get(key)
    except CACHE_ERRORS as error:
        _cache_failed(error)
        return load()
    if body is not None:
        CACHE_EVENTS.labels("catalog", "hit").inc()
        return body
    CACHE_EVENTS.labels("catalog", "miss").inc()
    body = load()
    try:
        with cache_circuit:
            cache.set(key, body, settings.CATALOG_CACHE_TTL)
        CACHE_EVENTS.labels("catalog", "fill").inc()
    except CACHE_ERRORS as error:
        _cache_failed(error)
    return body


def new_catalog_generation() -> None:
    """Retire every cached catalog response and product lookup (after a product change)."""
    lookups.forget_generations()  # the rest of this request reads the new generation
    try:
        with cache_circuit:
            _bump_generation()
        CACHE_EVENTS.labels("catalog", "invalidation").inc()
    except CACHE_ERRORS as error:
        # The next reader in this process bumps the generation once the cache is back.
        _cache_failed(error)


def _cache_failed(error) -> None:
    CACHE_EVENTS.labels("catalog", cache_error_event(error)).inc()
    outage.failed(error, "catalog reads go to the database")
    # The product lookups hang on this generation too: they start anew after the outage.
    lookups.failed(error)


def _bump_generation() -> None:
    bump(GENERATION_KEY)
