"""Prometheus counters of stock operations, exported at /metrics."""

import functools

from prometheus_client import Counter

from .exceptions import StockError

STOCK_OPERATIONS = Counter(
    "inventory_stock_operations_total",
    "Stock operations by operation and outcome (ok, or the refusal's code).",
    ["operation", "outcome"],
)


def counted(operation: str):
    """Count every call of a stock service: ``ok``, or the StockError code it raised."""

    def decorate(service):
        @functools.wraps(service)
        def wrapper(*args, **kwargs):
            try:
                result = service(*args, **kwargs)
            except StockError as error:
                STOCK_OPERATIONS.labels(operation, error.code).inc()
                raise
            STOCK_OPERATIONS.labels(operation, "ok").inc()
            return result

        return wrapper

    return decorate


CACHE_EVENTS = Counter(
    "inventory_cache_events_total",
    "Cache hits, misses, fills, invalidations and errors, by cache.",
    ["cache", "event"],
)

FLASH_GATE_ANSWERS = Counter(
    "inventory_flash_gate_answers_total",
    "Flash-sale gate answers to buyers of gated levels: admitted, refused (by Redis), "
    "sold_out_here (by the process, without Redis), refunded (admitted, then refused by the "
    "database), to_database (a reservation is due), fail_open (Redis down or not seeded).",
    ["answer"],
)
