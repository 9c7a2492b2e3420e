"""The read paths that must not grow with the data: each timed in-process (Django's test
client, every middleware included, no HTTP server) against the database the settings
name, e.g. one seeded with ``seed_demo --stores 10000 --products 500``.

    DATABASE_URL=postgres://.../scale_big REDIS_URL=redis://127.0.0.1:6379/11 \\
        python bench/scale_reads.py [--store store-00001] [--requests 30]

``scale_read_timings()`` returns the figures; the script prints them. It reads as the
``seed_demo`` logins ``admin`` (staff) and ``manager`` (manager of the first stores),
and gives them API tokens if they have none. Everything but the sessions and tokens it
needs is only read. ``READS`` names the read paths; ``bench/scale_bench.py`` times the
same ones over HTTP.
"""

import argparse
import io
import json
import os
import random
import secrets
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The time of a request at the 50th and 99th percentile, in milliseconds.
Timing = dict[str, float]


@dataclass(frozen=True)
class Read:
    """A read path that must not grow with the data: who reads it (``staff`` or
    ``manager``), how (an API ``token`` or an admin ``session``) and its path, where
    ``{store}`` is the store read and ``{sku}`` a product changing from request to
    request."""

    name: str
    user: str
    auth: str
    path: str

    def paths(self, store: str, count: int, products: int = 500) -> list[str]:
        return [
            self.path.format(store=store, sku=f"SKU-{n % products + 1:05d}") for n in range(count)
        ]


# Issue 14's point 5, besides the cache-miss stock GET (CACHE_MISS), whose levels each
# driver picks its own way.
READS = (
    Read("movements page (manager)", "manager", "token", "/api/v1/stores/{store}/movements/"),
    Read(
        "movements page, ?sku= (manager)",
        "manager",
        "token",
        "/api/v1/stores/{store}/movements/?sku={sku}",
    ),
    Read("audit page (staff)", "staff", "token", "/api/v1/audit/"),
    Read("audit page (manager)", "manager", "token", "/api/v1/audit/"),
    Read("admin stock levels (staff)", "staff", "session", "/admin/stock/stocklevel/"),
    Read("admin stock levels (manager)", "manager", "session", "/admin/stock/stocklevel/"),
    Read("admin movements (staff)", "staff", "session", "/admin/stock/movement/"),
    Read("admin audit events (staff)", "staff", "session", "/admin/audit/auditevent/"),
    Read("low-stock page (manager)", "manager", "session", "/stores/{store}/low-stock/"),
)
CACHE_MISS = Read(
    "cache-miss stock GET (staff)", "staff", "token", "/api/v1/stores/{store}/stock/{sku}/"
)


def _percentiles(samples: list[float]) -> Timing:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": statistics.median(ordered) * 1000, "p99_ms": p99 * 1000, "n": len(ordered)}


def _timed(get, paths: list[str], *, warm_up: int = 3, cache: str | None = None) -> Timing:
    """Each path requested once, after ``warm_up`` requests of the first; a status other
    than 200 (or an ``X-Cache`` header other than ``cache``, when given) stops the run."""
    for _ in range(warm_up):
        get(paths[0])
    samples = []
    for path in paths:
        started = time.perf_counter()
        response = get(path)
        samples.append(time.perf_counter() - started)
        if response.status_code != 200 or (cache and response.get("X-Cache") != cache):
            raise RuntimeError(f"{path}: {response.status_code} {response.content[:300]!r}")
    return _percentiles(samples)


def scale_read_timings(
    *,
    store: str = "store-00001",
    requests: int = 30,
    staff="admin",
    manager="manager",
    verify_ledger: bool = True,
) -> dict[str, Timing]:
    """{scenario: {"p50_ms", "p99_ms", "n"}} for the pages and endpoints of issue 14's
    point 5, and ``verify_ledger`` (one run, ``p50_ms`` its time). Django must be set up.
    Static files are named unhashed (no ``collectstatic`` needed): what is timed is the
    pages' own work."""
    from django.conf import settings
    from django.test import override_settings

    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        return _scale_read_timings(store, requests, staff, manager, verify_ledger)


def _scale_read_timings(store, requests, staff, manager, verify_ledger) -> dict[str, Timing]:
    from django.core.management import call_command
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from accounts.models import User
    from stock.cache import stock_level_cache
    from stock.models import StockLevel

    users = {
        "staff": User.objects.get(username=staff),
        "manager": User.objects.get(username=manager),
    }

    def session(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    def api(user):
        key = Token.objects.get_or_create(user=user)[0].key
        client = Client(HTTP_AUTHORIZATION=f"Token {key}")
        return client.get

    def getter(read: Read):
        user = users[read.user]
        return session(user).get if read.auth == "session" else api(user)

    timings = {read.name: _timed(getter(read), read.paths(store, requests)) for read in READS}
    # Cache misses: levels of the store read once each after every entry was retired
    # (the store's and user's lookups warm, as in a process that serves the store).
    skus = list(StockLevel.objects.filter(store__code=store).values_list("product__sku", flat=True))
    picked = random.Random(14).sample(skus, min(len(skus), requests + 3))
    get = getter(CACHE_MISS)
    paths = [CACHE_MISS.path.format(store=store, sku=sku) for sku in picked]
    for path in paths[:3]:
        get(path)
    stock_level_cache.drop_all()
    timings[CACHE_MISS.name] = _timed(get, paths[3:], warm_up=0, cache="MISS")

    if verify_ledger:
        started = time.perf_counter()
        call_command("verify_ledger", stdout=io.StringIO())
        timings["verify_ledger"] = {"p50_ms": (time.perf_counter() - started) * 1000, "n": 1}
    return timings


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default="store-00001")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--no-verify-ledger", action="store_true", help="leave out verify_ledger (minutes at scale)"
    )
    arguments = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_site.settings")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("API_RATE_PER_USER", "1000000000/m")
    os.environ.setdefault("API_RATE_PER_IP", "1000000000/m")
    import django

    django.setup()
    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic
    timings = scale_read_timings(
        store=arguments.store,
        requests=arguments.requests,
        verify_ledger=not arguments.no_verify_ledger,
    )
    if arguments.json:
        print(json.dumps(timings))
        return
    width = max(len(name) for name in timings)
    for name, timing in timings.items():
        p99 = f"  p99 {timing['p99_ms']:8.1f} ms" if "p99_ms" in timing else ""
        print(f"{name:<{width}}  p50 {timing.get('p50_ms', float('nan')):8.1f} ms{p99}")


if __name__ == "__main__":
    main()
