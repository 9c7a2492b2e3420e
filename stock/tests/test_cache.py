"""The stock and catalog caches (DESIGN.md, "Cache"): read-through, refreshed by every
committed write, never left holding a stale level, and counted in /metrics.

Real parts only: the local-memory cache and SQLite embedded, Redis and PostgreSQL in the
services mode.
"""

import io
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from catalog.models import Product
from stock.cache import stock_level_cache
from stock.exceptions import InsufficientStock
from stock.models import Reservation, StockLevel
from stock.selectors import stock_level_or_zero
from stock.serializers import StockLevelSerializer
from stock.services import (
    StockLine,
    reservation_create,
    reservations_expire_due,
    stock_purchase,
    stock_receive,
    stock_transfer,
)
from stock.tasks import expire_reservations
from stores.models import Role
from tests.api import api_client
from tests.concurrency import run_together
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory

BERLIN = "/api/v1/stores/berlin-01"
HAMBURG = "/api/v1/stores/hamburg-01"
LEVEL_FIELDS = ("on_hand", "reserved", "available", "reorder_point", "version")


@pytest.fixture
def manager(berlin, hamburg):
    """A manager of both stores."""
    user = UserFactory(username="manager")
    for store in (berlin, hamburg):
        MembershipFactory(user=user, store=store, role=Role.MANAGER)
    return user


@pytest.fixture
def api(manager):
    return api_client(manager)


def without_source(response) -> dict:
    body = response.json()
    body.pop("source")
    return body


def db_level_body(store, product) -> dict:
    """The level as the database holds it now, serialized like the GET's body."""
    return dict(StockLevelSerializer(stock_level_or_zero(store, product)).data)


# --- 1. Read-through ----------------------------------------------------------------


def test_a_level_is_read_from_the_database_once_then_from_the_cache(api, berlin, tee):
    stock_receive(store=berlin, product=tee, quantity=7)

    miss = api.get(f"{BERLIN}/stock/TEE/")
    hit = api.get(f"{BERLIN}/stock/TEE/")

    assert (miss.status_code, hit.status_code) == (200, 200)
    assert (miss.json()["source"], miss["X-Cache"]) == ("database", "MISS")
    assert (hit.json()["source"], hit["X-Cache"]) == ("cache", "HIT")
    assert without_source(hit) == without_source(miss)
    assert (miss.json()["on_hand"], miss.json()["version"]) == (7, 1)
    assert hit["ETag"] == miss["ETag"] == '"1"'


def test_a_never_stocked_product_reads_as_zero_and_is_cached_too(api, tee):
    miss = api.get(f"{BERLIN}/stock/TEE/")
    hit = api.get(f"{BERLIN}/stock/TEE/")

    assert (miss["X-Cache"], hit["X-Cache"]) == ("MISS", "HIT")
    assert hit.json() == {
        "store": "berlin-01",
        "sku": "TEE",
        "product_name": "T-shirt",
        "on_hand": 0,
        "reserved": 0,
        "available": 0,
        "reorder_point": 0,
        "version": 0,
        "updated_at": None,
        "source": "cache",
    }
    assert hit["ETag"] == '"0"'
    assert not StockLevel.objects.exists()


def test_the_stock_cache_ttl_is_60_seconds_by_default():
    assert django_settings.STOCK_CACHE_TTL == 60


def test_a_cached_level_expires_after_stock_cache_ttl(api, berlin, tee, settings):
    settings.STOCK_CACHE_TTL = 1
    stock_receive(store=berlin, product=tee, quantity=3)

    first, second = api.get(f"{BERLIN}/stock/TEE/"), api.get(f"{BERLIN}/stock/TEE/")
    time.sleep(1.2)
    third, fourth = api.get(f"{BERLIN}/stock/TEE/"), api.get(f"{BERLIN}/stock/TEE/")

    assert [r["X-Cache"] for r in (first, second, third, fourth)] == [
        "MISS",
        "HIT",
        "MISS",
        "HIT",
    ]
    assert without_source(third) == without_source(first)


@pytest.mark.services("the TTL is read back from Redis (run with REDIS_URL set)")
def test_redis_holds_a_filled_level_for_the_default_ttl(api, berlin, tee):
    stock_receive(store=berlin, product=tee, quantity=3)
    api.get(f"{BERLIN}/stock/TEE/")

    levels = stock_level_cache.levels
    generation, body = levels.read(berlin.pk, tee.pk)
    ttl = levels.client.ttl(f"{levels.prefix}{generation}:{berlin.pk}:{tee.pk}")

    assert body["version"] == 1
    assert 55 <= ttl <= 60


# --- 2. Catalog responses -----------------------------------------------------------


@pytest.fixture
def staff(db):
    return UserFactory(username="staffer", is_staff=True, is_superuser=True)


def product_queries(queries) -> list[str]:
    table = Product._meta.db_table
    return [query["sql"] for query in queries if table in query["sql"]]


@pytest.mark.parametrize("path", ["/api/v1/products/TEE/", "/api/v1/products/?search=TEE"])
def test_a_product_response_is_served_from_the_cache_without_product_queries(
    staff, tee, path, django_assert_num_queries
):
    client = api_client(staff)
    with CaptureQueriesContext(connection) as miss_queries:
        miss = client.get(path)
    # The token lookup is cached too: a hit makes no query at all.
    with django_assert_num_queries(0) as hit_queries:
        hit = client.get(path)

    assert (miss.status_code, hit.status_code) == (200, 200)
    assert hit.json() == miss.json()
    assert len(hit_queries.captured_queries) < len(miss_queries.captured_queries)
    assert product_queries(miss_queries.captured_queries)
    assert product_queries(hit_queries.captured_queries) == []


def change_through_the_api(staff, product):
    response = api_client(staff).patch(
        f"/api/v1/products/{product.sku}/", {"name": "Renamed"}, format="json"
    )
    assert response.status_code == 200, response.content


def change_through_the_admin(staff, product):
    client = Client()
    client.force_login(staff)
    response = client.post(
        f"/admin/catalog/product/{product.pk}/change/",
        {
            "sku": product.sku,
            "name": "Renamed",
            "description": product.description,
            "price": str(product.price),
            "is_active": "on",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.content[:2000]


def change_with_save(staff, product):
    product.name = "Renamed"
    product.save()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "change",
    [change_through_the_api, change_through_the_admin, change_with_save],
    ids=["api-patch", "admin-change-form", "model-save"],
)
def test_a_product_change_retires_cached_detail_and_list_responses(staff, change):
    tee = ProductFactory(sku="TEE", name="T-shirt")
    client = api_client(staff)
    detail, listing = "/api/v1/products/TEE/", "/api/v1/products/"
    assert client.get(detail).json()["name"] == "T-shirt"
    assert [p["name"] for p in client.get(listing).json()["results"]] == ["T-shirt"]
    with CaptureQueriesContext(connection) as cached:  # both answers are cached now
        client.get(detail), client.get(listing)
    assert product_queries(cached.captured_queries) == []

    change(staff, tee)

    assert client.get(detail).json()["name"] == "Renamed"
    assert [p["name"] for p in client.get(listing).json()["results"]] == ["Renamed"]


@pytest.mark.django_db(transaction=True)
def test_a_new_product_appears_in_a_cached_list(staff):
    ProductFactory(sku="TEE")
    client = api_client(staff)
    assert [p["sku"] for p in client.get("/api/v1/products/").json()["results"]] == ["TEE"]

    created = client.post(
        "/api/v1/products/", {"sku": "MUG", "name": "Mug", "price": "4.50"}, format="json"
    )

    assert created.status_code == 201
    listed = client.get("/api/v1/products/").json()["results"]
    assert [p["sku"] for p in listed] == ["MUG", "TEE"]
    assert Decimal(listed[0]["price"]) == Decimal("4.50")


# --- 3. Read-your-write on every write path ------------------------------------------
#
# Not covered because they do not exist yet: "bulk" stock updates and stock edits through
# the Django admin (StockLevel has no admin form that writes). Add a WritePath for each
# when they are built; they must send stock_changed after commit like the rest.


@dataclass
class World:
    api: object
    berlin: object
    hamburg: object
    tee: object
    reservation: Reservation | None = None


def due(reservation):
    """Make a hold due without touching stock: its expiry moves into the past."""
    Reservation.objects.filter(pk=reservation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def hold(units: int, *, is_due: bool = False):
    def prepare(world):
        world.reservation = reservation_create(
            store=world.berlin, lines=[StockLine(world.tee, units)], ttl_seconds=600
        )
        if is_due:
            due(world.reservation)

    return prepare


def post(path, body=None, status=200):
    def act(world):
        url = path.format(id=world.reservation.pk if world.reservation else None)
        response = world.api.post(url, body or {}, format="json")
        assert response.status_code == status, response.content

    return act


def patch_reorder_point(world):
    response = world.api.patch(f"{BERLIN}/stock/TEE/", {"reorder_point": 3}, format="json")
    assert response.status_code == 200, response.content


def expire_with_service(world):
    assert reservations_expire_due(via="test") == 1


def expire_with_command(world):
    out = io.StringIO()
    call_command("expire_reservations", stdout=out)
    assert out.getvalue().strip() == "Expired 1 reservation(s)."


def expire_with_task(world):
    assert expire_reservations() == 1


@dataclass(frozen=True)
class WritePath:
    act: Callable
    # store code -> (on_hand, reserved, version) after the write; berlin starts at (10, 0, 1)
    # (or as ``prepare`` left it), hamburg has never stocked the product.
    expect: dict
    prepare: Callable | None = None
    reorder_point: int = 0


WRITE_PATHS = {
    "receive": WritePath(
        post(f"{BERLIN}/stock/TEE/receive/", {"quantity": 5}), {"berlin-01": (15, 0, 2)}
    ),
    "adjust": WritePath(
        post(f"{BERLIN}/stock/TEE/adjust/", {"delta": -2, "reason": "damaged"}),
        {"berlin-01": (8, 0, 2)},
    ),
    "set": WritePath(post(f"{BERLIN}/stock/TEE/set/", {"on_hand": 12}), {"berlin-01": (12, 0, 2)}),
    "purchase": WritePath(
        post(f"{BERLIN}/stock/TEE/purchase/", {"quantity": 3}), {"berlin-01": (7, 0, 2)}
    ),
    "transfer": WritePath(
        post(
            f"{BERLIN}/transfers/",
            {"to_store": "hamburg-01", "lines": [{"sku": "TEE", "quantity": 4}]},
        ),
        {"berlin-01": (6, 0, 2), "hamburg-01": (4, 0, 1)},
    ),
    "reorder-point": WritePath(
        patch_reorder_point,
        {"berlin-01": (10, 0, 1)},
        reorder_point=3,
    ),
    "reserve": WritePath(
        post(f"{BERLIN}/reservations/", {"lines": [{"sku": "TEE", "quantity": 3}]}, status=201),
        {"berlin-01": (10, 3, 2)},
    ),
    "commit": WritePath(
        post(f"{BERLIN}/reservations/{{id}}/commit/"), {"berlin-01": (7, 0, 3)}, hold(3)
    ),
    "release": WritePath(
        post(f"{BERLIN}/reservations/{{id}}/release/"), {"berlin-01": (10, 0, 3)}, hold(3)
    ),
    "commit-of-a-due-hold-expires-it": WritePath(
        post(f"{BERLIN}/reservations/{{id}}/commit/", status=409),
        {"berlin-01": (10, 0, 3)},
        hold(3, is_due=True),
    ),
    "expire-reservations_expire_due": WritePath(
        expire_with_service, {"berlin-01": (10, 0, 3)}, hold(3, is_due=True)
    ),
    "expire-command": WritePath(
        expire_with_command, {"berlin-01": (10, 0, 3)}, hold(3, is_due=True)
    ),
    "expire-beat-task": WritePath(
        expire_with_task, {"berlin-01": (10, 0, 3)}, hold(3, is_due=True)
    ),
    # 8 held and due, 2 available: the sale of 5 expires the hold (v3) and then sells (v4).
    "purchase-expiring-a-due-hold": WritePath(
        post(f"{BERLIN}/stock/TEE/purchase/", {"quantity": 5}),
        {"berlin-01": (5, 0, 4)},
        hold(8, is_due=True),
    ),
    "reserve-expiring-a-due-hold": WritePath(
        post(f"{BERLIN}/reservations/", {"lines": [{"sku": "TEE", "quantity": 5}]}, status=201),
        {"berlin-01": (10, 5, 4)},
        hold(8, is_due=True),
    ),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path",
    [pytest.param(path, id=name) for name, path in WRITE_PATHS.items()],
)
def test_the_next_read_after_a_write_is_the_written_level_from_the_cache(path):
    berlin, hamburg = StoreFactory(code="berlin-01"), StoreFactory(code="hamburg-01")
    tee = ProductFactory(sku="TEE")
    manager = UserFactory(username="manager")
    for store in (berlin, hamburg):
        MembershipFactory(user=manager, store=store, role=Role.MANAGER)
    world = World(api_client(manager), berlin, hamburg, tee)
    stock_receive(store=berlin, product=tee, quantity=10)
    if path.prepare:
        path.prepare(world)
    cache.clear()  # the set-up's own refreshes filled it: start from a read-through fill
    urls = {"berlin-01": f"{BERLIN}/stock/TEE/", "hamburg-01": f"{HAMBURG}/stock/TEE/"}
    for code in path.expect:
        assert world.api.get(urls[code])["X-Cache"] == "MISS"
        assert world.api.get(urls[code])["X-Cache"] == "HIT"

    path.act(world)

    stores = {"berlin-01": berlin, "hamburg-01": hamburg}
    for code, (on_hand, reserved, version) in path.expect.items():
        response = world.api.get(urls[code])
        body = response.json()
        assert (body["source"], response["X-Cache"], response["ETag"]) == (
            "cache",
            "HIT",
            f'"{version}"',
        ), code
        assert {name: body[name] for name in LEVEL_FIELDS} == {
            "on_hand": on_hand,
            "reserved": reserved,
            "available": on_hand - reserved,
            "reorder_point": path.reorder_point,
            "version": version,
        }, code
        assert without_source(response) == db_level_body(stores[code], tee), code


# --- 4. No stale value survives a write ----------------------------------------------


@pytest.mark.postgresql
@pytest.mark.services("real Redis and PostgreSQL under concurrent readers and writers")
@pytest.mark.django_db(transaction=True)
def test_after_concurrent_reads_and_writes_every_cached_level_is_the_databases(settings):
    settings.RATELIMIT_ENABLE = False
    stores = [StoreFactory(), StoreFactory()]
    products = [ProductFactory(), ProductFactory()]
    pairs = [(store, product) for store in stores for product in products]
    for store, product in pairs:
        stock_receive(store=store, product=product, quantity=200)
    reader = UserFactory()
    for store in stores:
        MembershipFactory(user=reader, store=store, role=Role.VIEWER)
    deadline = time.monotonic() + 3

    def read_through_the_api(seed):
        rng, client, seen, reads = random.Random(seed), api_client(reader), {}, 0
        while time.monotonic() < deadline:
            store, product = rng.choice(pairs)
            response = client.get(f"/api/v1/stores/{store.code}/stock/{product.sku}/")
            assert response.status_code == 200, response.content
            version = response.json()["version"]
            # A reader never sees a level go back to an older version.
            assert version >= seen.get((store.pk, product.pk), 0)
            seen[(store.pk, product.pk)] = version
            reads += 1
        return reads

    def read_the_cache_directly(seed):
        rng, seen, reads = random.Random(seed), {}, 0
        while time.monotonic() < deadline:
            store, product = rng.choice(pairs)
            body, _ = stock_level_cache.read(
                store.pk, product.pk, load=lambda s=store, p=product: db_level_body(s, p)
            )
            assert body["version"] >= seen.get((store.pk, product.pk), 0)
            seen[(store.pk, product.pk)] = body["version"]
            reads += 1
        return reads

    def write(seed):
        rng, writes = random.Random(seed), 0
        while time.monotonic() < deadline:
            store, product = rng.choice(pairs)
            action = rng.choice(["purchase", "receive", "transfer"])
            try:
                if action == "purchase":
                    stock_purchase(store=store, product=product, quantity=rng.randint(1, 3))
                elif action == "receive":
                    stock_receive(store=store, product=product, quantity=rng.randint(1, 3))
                else:
                    other = stores[1] if store == stores[0] else stores[0]
                    stock_transfer(from_store=store, to_store=other, lines=[StockLine(product, 1)])
            except InsufficientStock:
                continue
            writes += 1
        return writes

    outcomes = run_together(
        [lambda s=s: read_through_the_api(s) for s in range(4)]
        + [lambda s=s: read_the_cache_directly(100 + s) for s in range(2)]
        + [lambda s=s: write(200 + s) for s in range(4)]
    )

    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    assert min(outcomes) > 0
    for store, product in pairs:
        _, cached = stock_level_cache.levels.read(store.pk, product.pk)
        assert cached is None or cached == db_level_body(store, product), (store, product)


@pytest.mark.django_db(transaction=True)
def test_a_slow_reader_cannot_put_back_a_level_older_than_a_writers_refresh():
    """The reader loads version 1, the writer commits version 2 (its refresh fills the
    cache), then the reader's fill of version 1 arrives: it must be refused."""
    store, product = StoreFactory(), ProductFactory()
    stock_receive(store=store, product=product, quantity=5)
    cache.clear()  # that receive's refresh filled it: the reader must miss
    loaded, committed = threading.Event(), threading.Event()

    def slow_load():
        old = db_level_body(store, product)
        loaded.set()
        assert committed.wait(timeout=30), "the writer never committed"
        return old

    def slow_reader():
        return stock_level_cache.read(store.pk, product.pk, load=slow_load)

    def writer():
        assert loaded.wait(timeout=30), "the reader never loaded"
        level = stock_receive(store=store, product=product, quantity=2)  # commits, refreshes
        committed.set()
        return level

    read, written = run_together([slow_reader, writer])

    assert not isinstance(read, BaseException) and not isinstance(written, BaseException), (
        read,
        written,
    )
    body, hit = read
    assert (hit, body["version"], body["on_hand"]) == (False, 1, 5)
    assert written.version == 2
    _, cached = stock_level_cache.levels.read(store.pk, product.pk)
    assert cached == db_level_body(store, product)
    assert (cached["version"], cached["on_hand"]) == (2, 7)


def test_a_refresh_of_many_levels_keeps_the_newer_of_each_and_replaces_equal_versions(db):
    """``refresh_many`` (a bulk batch's one round trip) follows ``refresh``'s rule per
    entry: an entry newer than the refresh stays, one of the same version or older is
    replaced."""
    store = StoreFactory()
    products = [ProductFactory() for _ in range(3)]
    keys = [(store.pk, product.pk) for product in products]

    def body(version, on_hand):
        return {"version": version, "on_hand": on_hand}

    for key, version in zip(keys, (5, 3, 1), strict=True):
        stock_level_cache.refresh(*key, body(version, 100))

    stock_level_cache.refresh_many({key: body(3, 7) for key in keys})

    cached = [stock_level_cache.levels.read(*key)[1] for key in keys]
    assert cached == [body(5, 100), body(3, 7), body(3, 7)]


# --- 5. Metrics ---------------------------------------------------------------------


def stock_cache_events() -> dict[str, float]:
    response = Client().get("/metrics")
    assert response.status_code == 200
    events = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            if sample.name == "inventory_cache_events_total" and (
                sample.labels.get("cache") == "stock"
            ):
                events[sample.labels["event"]] = sample.value
    return events


def test_stock_cache_events_are_counted(api, berlin, tee, django_capture_on_commit_callbacks):
    stock_receive(store=berlin, product=tee, quantity=4)  # before any read: nothing cached
    before = stock_cache_events()

    miss = api.get(f"{BERLIN}/stock/TEE/")
    hit = api.get(f"{BERLIN}/stock/TEE/")
    with django_capture_on_commit_callbacks(execute=True):
        stock_receive(store=berlin, product=tee, quantity=1)
    after = stock_cache_events()

    assert (miss["X-Cache"], hit["X-Cache"]) == ("MISS", "HIT")
    change = {
        event: after.get(event, 0.0) - before.get(event, 0.0)
        for event in ("hit", "miss", "fill", "invalidation", "error")
    }
    assert change == {"hit": 1, "miss": 1, "fill": 1, "invalidation": 1, "error": 0}
