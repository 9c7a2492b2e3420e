from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from stock import cache as stock_cache
from stock.operator_io import ITERATOR_CHUNK_SIZE, stock_levels_for_report, store_by_code
from stock.serializers import StockLevelSerializer

LOCAL_MEMORY_CACHE = "django.core.cache.backends.locmem.LocMemCache"


class Command(BaseCommand):
    help = (
        "Fill the stock level cache from the database, so that the first reads of "
        "GET /api/v1/stores/{code}/stock/{sku}/ are hits. Each level goes through the "
        "read path's own read-through (stock_level_cache.read): a level cached already "
        "is left as it is, a missing one is filled with the body the API serves, and a "
        "newer version written meanwhile is never replaced by an older one. Entries live "
        "STOCK_CACHE_TTL seconds like any other. Exits 1 if the cache cannot be reached."
    )

    def add_arguments(self, parser):
        parser.add_argument("--store", metavar="CODE", help="only this store's levels")

    def handle(self, *args, store: str | None, **options):
        if settings.CACHES["default"]["BACKEND"] == LOCAL_MEMORY_CACHE:
            self.stderr.write(
                "The cache is local memory: it belongs to this process alone, so the web "
                "server will not see what is filled here (set REDIS_URL)."
            )
        levels = stock_levels_for_report(store_by_code(store) if store else None).order_by("pk")
        filled = present = 0
        for level in levels.iterator(chunk_size=ITERATOR_CHUNK_SIZE):
            _, hit = stock_cache.stock_level_cache.read(
                level.store_id,
                level.product_id,
                load=lambda level=level: StockLevelSerializer(level).data,
            )
            # read() serves from the database when the cache fails; it says so here.
            if stock_cache.outage.failing:
                raise CommandError(
                    f"The stock cache is unreachable; {filled} stock level(s) cached "
                    "before it failed."
                )
            if hit:
                present += 1
            else:
                filled += 1
        self.stdout.write(
            self.style.SUCCESS(
                f"Cached {filled + present} stock level(s): {filled} filled, "
                f"{present} cached already."
            )
        )
