from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inventory_site.cache_outage import CACHE_ERRORS
from stock import cache as stock_cache
from stock.models import StockLevel
from stock.operator_io import store_by_code
from stock.serializers import stock_level_body

LOCAL_MEMORY_CACHE = "django.core.cache.backends.locmem.LocMemCache"
# Levels read from the database and written to the cache in one round trip each.
CHUNK_SIZE = 1000


class Command(BaseCommand):
    help = (
        "Fill the stock level cache from the database, so that the first reads of "
        "GET /api/v1/stores/{code}/stock/{sku}/ are hits. Each level gets the body the "
        "API serves, with the read path's own compare-and-set: a level cached at the "
        "same or a newer version is left as it is, and a newer version written meanwhile "
        "is never replaced by an older one. The levels go to Redis 1,000 at a time, one "
        "round trip each. Entries live STOCK_CACHE_TTL seconds like any other. Exits 1 if "
        "the cache cannot be reached."
    )

    def add_arguments(self, parser):
        parser.add_argument("--store", metavar="CODE", help="only this store's levels")

    def handle(self, *args, store: str | None, **options):
        if settings.CACHES["default"]["BACKEND"] == LOCAL_MEMORY_CACHE:
            self.stderr.write(
                "The cache is local memory: it belongs to this process alone, so the web "
                "server will not see what is filled here (set REDIS_URL)."
            )
        levels = StockLevel.objects.select_related("store", "product").order_by("pk")
        if store:
            levels = levels.filter(store=store_by_code(store))
        filled = present = 0
        after = 0  # the last level's pk: the chunks go by keyset, not by offset
        generation = None  # read with the previous chunk's writes
        while True:
            chunk: list[StockLevel] = []

            def load(after=after, chunk=chunk):
                """Read after the cache's generation (``fill_many``), and again if it
                moved on."""
                chunk[:] = levels.filter(pk__gt=after)[:CHUNK_SIZE]
                return [
                    (level.store_id, level.product_id, stock_level_body(level)) for level in chunk
                ]

            try:
                written, cached, generation = stock_cache.stock_level_cache.fill_many(
                    load, generation
                )
            except CACHE_ERRORS:
                raise CommandError(
                    f"The stock cache is unreachable; {filled} stock level(s) cached "
                    "before it failed."
                ) from None
            filled, present = filled + written, present + cached
            if len(chunk) < CHUNK_SIZE:
                break
            after = chunk[-1].pk
        self.stdout.write(
            self.style.SUCCESS(
                f"Cached {filled + present} stock level(s): {filled} filled, "
                f"{present} cached already."
            )
        )
