"""Reads of the store dashboard (``/stores/<code>/``): a page of a store's levels, the
header's counts and the latest movements, all as of one event ``seq``.

The page embeds that ``seq``; its script applies the store's events after it (from the
live stream, or from the events API when the stream is not there). So the rows, the
counts and the ``seq`` must be one snapshot: a change committed between two of the reads
would be shown twice (counted in the header, then applied again) or not at all. They are
read in one read-only transaction, REPEATABLE READ on PostgreSQL (SQLite's transaction
is a snapshot already); a change's event is written in the same transaction as the
change, so the snapshot holds both or neither.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.paginator import Page, Paginator
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from events.models import StoreEventSequence
from stores.models import Store

from .models import LOW_STOCK, Movement, StockLevel
from .selectors import movements_of_store, stock_levels_of_store

# Rows per page: a store of thousands of levels is read a page at a time, filtered and
# searched by the database; the live updates apply to the rows shown.
LEVELS_PER_PAGE = 100
LATEST_MOVEMENTS = 15
MAX_QUERY_LENGTH = 100


@dataclass(frozen=True)
class LevelFilter:
    """What the rows are narrowed to: ``q`` part of a SKU or product name, ``low``
    only the levels at or below their reorder point (out of stock included)."""

    q: str = ""
    low: bool = False

    @classmethod
    def from_query(cls, params) -> "LevelFilter":
        return cls(
            q=params.get("q", "").strip()[:MAX_QUERY_LENGTH],
            low=params.get("low", "") in {"1", "true", "on"},
        )

    @property
    def narrows(self) -> bool:
        return bool(self.q or self.low)


@dataclass(frozen=True)
class StoreCounts:
    """The header: ``low`` levels at or below their reorder point (as the low-stock page
    counts them, those out of stock included), ``out`` levels with nothing available,
    ``changes_today`` stock changes since midnight (TIME_ZONE), one event each."""

    low: int
    out: int
    changes_today: int


@dataclass(frozen=True)
class Day:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class DashboardSnapshot:
    seq: int  # the store's last event number when the rest was read
    levels: Page
    counts: StoreCounts
    movements: list[Movement]
    day: Day


def today() -> Day:
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return Day(start, timezone.localtime(start + timedelta(days=1)).replace(hour=0))


def dashboard_snapshot(store: Store, level_filter: LevelFilter, page: str | int = 1):
    """Everything the page shows, as of one ``seq`` (see the module's docstring).
    Queries do not grow with the store: the page's count and rows, the counts, the
    movements (with their products and actors) and the ``seq``."""
    with _snapshot():
        day = today()
        seq = last_event_seq(store)
        levels = Paginator(filtered_levels(store, level_filter), LEVELS_PER_PAGE).get_page(page)
        list(levels.object_list)  # read inside the snapshot
        return DashboardSnapshot(
            seq=seq,
            levels=levels,
            counts=store_counts(store, day),
            movements=latest_movements(store),
            day=day,
        )


def summary(store: Store) -> tuple[int, StoreCounts, Day]:
    """The header's counts as of the returned ``seq``: what the page's script reloads
    when an event's level is not on the page (its value before the event is unknown)."""
    with _snapshot():
        day = today()
        return last_event_seq(store), store_counts(store, day), day


@contextmanager
def _snapshot():
    """A read-only transaction whose reads all see the same committed data (inside a
    caller's transaction, such as a test's, that transaction's)."""
    own = not connection.in_atomic_block
    with transaction.atomic():
        if own and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def last_event_seq(store: Store) -> int:
    """The number of the store's last committed event; 0 before its first."""
    return (
        StoreEventSequence.objects.filter(store=store).values_list("last_seq", flat=True).first()
        or 0
    )


def filtered_levels(store: Store, level_filter: LevelFilter):
    levels = stock_levels_of_store(store)
    if level_filter.q:
        levels = levels.filter(
            Q(product__sku__icontains=level_filter.q) | Q(product__name__icontains=level_filter.q)
        )
    if level_filter.low:
        levels = levels.filter(LOW_STOCK)
    return levels


def store_counts(store: Store, day: Day) -> StoreCounts:
    levels = StockLevel.objects.filter(store=store).aggregate(
        low=Count("pk", filter=LOW_STOCK), out=Count("pk", filter=Q(available=0))
    )
    changes = Movement.objects.filter(store=store, created_at__gte=day.start).count()
    return StoreCounts(low=levels["low"], out=levels["out"], changes_today=changes)


def latest_movements(store: Store) -> list[Movement]:
    return list(movements_of_store(store)[:LATEST_MOVEMENTS])
