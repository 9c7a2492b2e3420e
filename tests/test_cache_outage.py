"""Redis going away and coming back, through the API (DESIGN.md, "Cache").

Each test starts its own ``redis-server`` on a spare port and points the Django cache at
it, so it runs in the embedded mode too (any database) and never touches a shared Redis.
Stopping that server mid-test is the outage: stock reads are then served from the
database, stock writes still commit, catalog reads still answer, nothing 500s, and each
part logs the outage once, not once per request. When the server is back the cache is
used again, and no value cached before the outage is served after it (stock/cache.py:
a process whose refresh failed starts a new generation of keys).

After a failure each process skips Redis for CACHE_CIRCUIT_OPEN_SECONDS (set short here)
before one request tries it again (tests/test_cache_hanging.py tests that circuit); so
after a restart the tests wait that long before they expect the cache to be used.

The main test restarts Redis *with its data* (``SHUTDOWN SAVE``, then the same
``--dir``), as a Redis with persistence or one that was only unreachable would come
back: the entry from before the outage is still there, and only the generation bump
keeps it from being served.
"""

import logging
import time
import uuid

import pytest

from catalog import cache as catalog_cache
from events import publisher as events_publisher
from inventory_site import cache_outage, lookup_cache
from inventory_site.api import ratelimits
from stock import cache as stock_cache
from stock.flash_gate import process as flash_gate_process
from stock.models import StockLevel
from stock.services import stock_receive
from stores.models import Membership, Role
from stores.services import membership_revoke
from tests.api import api_client, assert_error
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory
from tests.processes import RedisServer, free_port, redis_cache

pytestmark = [
    pytest.mark.skipif(not RedisServer.available(), reason="needs the redis-server binary on PATH"),
    pytest.mark.django_db(transaction=True),
]

CIRCUIT_OPEN_SECONDS = 0.2

OUTAGE_LOGS = {
    "stock.cache": stock_cache.outage,
    "catalog.cache": catalog_cache.outage,
    "inventory_site.api.ratelimits": ratelimits.outage,
    "inventory_site.lookup_cache": lookup_cache.outage,
    "stock.flash_gate.process": flash_gate_process.outage,
    "events.publisher": events_publisher.outage,
}


@pytest.fixture
def redis_server(settings, tmp_path):
    """Its own redis-server as the default cache, every outage log reset."""
    server = RedisServer(free_port(), tmp_path)
    server.start()
    settings.CACHES = redis_cache(server.port, f"cache-outage-{uuid.uuid4().hex[:8]}")
    settings.RATELIMIT_ENABLE = True
    settings.RATELIMIT_FAIL_OPEN = True
    settings.CACHE_CIRCUIT_OPEN_SECONDS = CIRCUIT_OPEN_SECONDS
    for log in OUTAGE_LOGS.values():
        log.failing = False
    cache_outage.reset_circuits()
    stock_cache.stock_level_cache._refresh_failed = False
    try:
        yield server
    finally:
        server.stop()
        for log in OUTAGE_LOGS.values():
            log.failing = False
        cache_outage.reset_circuits()
        stock_cache.stock_level_cache._refresh_failed = False


def restart(server: RedisServer) -> None:
    """Start Redis again, and wait until this process would try it again."""
    server.start()
    time.sleep(CIRCUIT_OPEN_SECONDS)


@pytest.fixture
def shop(db):
    """A store with 10 units of one product and a manager's API client."""
    store, product = StoreFactory(), ProductFactory()
    manager = UserFactory()
    MembershipFactory(user=manager, store=store, role=Role.MANAGER)
    stock_receive(store=store, product=product, quantity=10)
    base = f"/api/v1/stores/{store.code}/stock/{product.sku}/"
    return store, product, api_client(manager), base


def records(caplog, logger: str, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == level]


def read_level(client, base) -> tuple[str, dict]:
    response = client.get(base)
    assert response.status_code == 200, (response.status_code, response.content[:300])
    body = response.json()
    assert body["source"] == ("cache" if response["X-Cache"] == "HIT" else "database"), body
    return response["X-Cache"], body


def level_key(store, product, generation: int) -> str:
    levels = stock_cache.stock_level_cache.levels
    return f"{levels.prefix}{generation}:{store.pk}:{product.pk}"


def test_redis_outage_serves_from_the_database_logs_once_and_never_serves_stale(
    redis_server, shop, caplog
):
    store, product, client, base = shop
    caplog.set_level(logging.INFO)
    redis_server.client().flushdb()  # drop the entry the seeding receive put in

    # (1) Read-through: a miss fills the cache, the next read is a hit.
    assert read_level(client, base)[0] == "MISS"
    status, body = read_level(client, base)
    assert (status, body["on_hand"], body["version"]) == ("HIT", 10, 1)
    assert redis_server.client().get(level_key(store, product, 0)) is not None

    # (2) Outage: Redis stops, keeping its data for the restart.
    redis_server.stop(keep_data=True)
    caplog.clear()
    started = time.monotonic()
    for _ in range(3):
        status, body = read_level(client, base)
        assert (status, body["source"], body["on_hand"]) == ("MISS", "database", 10)

    purchase = client.post(f"{base}purchase/", {"quantity": 2}, format="json")
    assert purchase.status_code == 200, purchase.content[:300]
    assert purchase.json()["on_hand"] == 8
    receive = client.post(f"{base}receive/", {"quantity": 5}, format="json")
    assert receive.status_code == 200, receive.content[:300]
    assert (receive.json()["on_hand"], receive.json()["version"]) == (13, 3)
    level = StockLevel.objects.get(store=store, product=product)
    assert (level.on_hand, level.version) == (13, 3)  # committed, not just answered

    status, body = read_level(client, base)
    assert (status, body["on_hand"], body["version"]) == ("MISS", 13, 3)
    for _ in range(2):
        products = client.get("/api/v1/products/")
        assert products.status_code == 200, products.content[:300]
        assert product.sku in {item["sku"] for item in products.json()["results"]}
        detail = client.get(f"/api/v1/products/{product.sku}/")
        assert detail.status_code == 200, detail.content[:300]
        assert detail.json()["sku"] == product.sku
    outage_seconds = time.monotonic() - started
    assert outage_seconds < 10, f"requests during the outage took {outage_seconds:.1f}s"

    assert len(records(caplog, "stock.cache", logging.ERROR)) == 1, caplog.text
    assert len(records(caplog, "catalog.cache", logging.ERROR)) == 1, caplog.text
    assert len(records(caplog, "inventory_site.api.ratelimits", logging.ERROR)) == 1
    assert len(records(caplog, "inventory_site.lookup_cache", logging.ERROR)) == 1
    # The gate asks which levels are gated at most once a FLASH_GATE_REGISTRY_SECONDS: if
    # it asked during the outage, it failed open and said so once.
    assert len(records(caplog, "stock.flash_gate.process", logging.ERROR)) <= 1
    # The sale and the receipt each published their stock event to the live streams:
    # both failed, said once (the streams read the log when they resume).
    assert len(records(caplog, "events.publisher", logging.ERROR)) == 1, caplog.text
    others = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name not in OUTAGE_LOGS]
    assert not others, caplog.text

    # (3) Redis is back on the same port with the pre-outage entry (version 1, 10 units).
    caplog.clear()
    restart(redis_server)
    assert redis_server.client().get(level_key(store, product, 0)).startswith(b"1:")

    status, body = read_level(client, base)
    assert (body["on_hand"], body["version"]) == (13, 3), (
        f"the first read after the outage served the pre-outage entry ({status}): {body}"
    )
    assert status == "MISS"
    statuses = []
    for _ in range(2):
        status, body = read_level(client, base)
        assert (body["on_hand"], body["version"]) == (13, 3)
        statuses.append(status)
    assert "HIT" in statuses, statuses

    answers_again = records(caplog, "stock.cache", logging.WARNING)
    assert len(answers_again) == 1 and "answers again" in answers_again[0], caplog.text
    assert not records(caplog, "stock.cache", logging.ERROR), caplog.text


def test_a_membership_revoked_during_an_outage_is_not_served_from_the_cache_after_it(
    redis_server, shop
):
    """The revocation cannot retire the cached lookups while Redis is down; the process
    that saw the outage starts new generations when Redis is back, so neither its memory
    nor the pre-outage Redis entries let the revoked user in."""
    store, _, client, base = shop
    manager = Membership.objects.get(store=store).user
    assert read_level(client, base)[0] in {"HIT", "MISS"}
    assert client.get(base).status_code == 200  # the lookups are cached, in Redis too

    redis_server.stop(keep_data=True)
    membership_revoke(store=store, user=manager, actor=None)
    assert_error(client.get(base), 404)  # from the database during the outage

    restart(redis_server)
    for _ in range(3):
        assert_error(client.get(base), 404)


def test_a_product_deactivated_during_an_outage_is_not_sold_after_it(redis_server, shop):
    """The deactivation could not retire the cached product lookup (the catalog bump
    failed); the lookups start new generations once Redis is back."""
    _, product, client, base = shop
    assert client.post(f"{base}purchase/", {"quantity": 1}, format="json").status_code == 200

    redis_server.stop(keep_data=True)
    product.is_active = False
    product.save()
    restart(redis_server)

    refused = client.post(f"{base}purchase/", {"quantity": 1}, format="json")
    assert_error(refused, 409, "product_inactive")


def test_each_outage_is_logged_once_and_an_empty_restarted_redis_fills_again(
    redis_server, shop, caplog
):
    store, product, client, base = shop
    caplog.set_level(logging.INFO)

    for outage in range(2):
        redis_server.stop()  # killed: comes back empty
        for _ in range(3):
            assert read_level(client, base)[0] == "MISS"
        purchase = client.post(f"{base}purchase/", {"quantity": 1}, format="json")
        assert purchase.status_code == 200, purchase.content[:300]

        restart(redis_server)
        statuses = [read_level(client, base) for _ in range(3)]
        assert {body["on_hand"] for _, body in statuses} == {9 - outage}
        assert statuses[-1][0] == "HIT", statuses

    assert len(records(caplog, "stock.cache", logging.ERROR)) == 2, caplog.text
    warnings = records(caplog, "stock.cache", logging.WARNING)
    assert len(warnings) == 2 and all("answers again" in w for w in warnings), caplog.text


def test_rate_limits_refuse_while_redis_is_down_when_not_failing_open(
    redis_server, shop, settings, caplog
):
    store, product, client, base = shop
    settings.RATELIMIT_FAIL_OPEN = False
    assert client.get(base).status_code == 200

    redis_server.stop()
    caplog.clear()
    for _ in range(3):
        response = client.get(base)
        assert_error(response, 429, "throttled")
        assert response["Retry-After"] == "1"
    assert_error(client.post(f"{base}purchase/", {"quantity": 1}, format="json"), 429)
    assert StockLevel.objects.get(store=store, product=product).on_hand == 10
    errors = records(caplog, "inventory_site.api.ratelimits", logging.ERROR)
    assert len(errors) == 1 and "refusing requests" in errors[0], caplog.text

    restart(redis_server)
    assert client.get(base).status_code == 200
