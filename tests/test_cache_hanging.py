"""Redis that accepts connections and never answers (DESIGN.md, "Cache").

A stopped Redis refuses connections at once (tests/test_cache_outage.py); a stalled one
costs every call its socket timeout (0.5 s in settings.py), and a request makes several
calls. After the first timeout ``inventory_site.cache_outage.Circuit`` skips Redis for
CACHE_CIRCUIT_OPEN_SECONDS, so the requests meanwhile answer from the database at their
usual speed; then one request tries Redis again.

The silent Redis is a listening socket in a thread of the test: it accepts every
connection, reads nothing and answers nothing. Counting the connections it accepted says
how often Redis was tried.
"""

import json
import socket
import threading
import time
import urllib.request
import uuid

import pytest
from rest_framework.authtoken.models import Token

from catalog import cache as catalog_cache
from inventory_site import cache_outage
from inventory_site.api import ratelimits
from stock import cache as stock_cache
from stock.models import Movement, MovementKind, StockLevel
from stock.services import stock_receive
from stores.models import Role
from tests.api import api_client
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory
from tests.processes import (
    ProjectProcesses,
    RedisServer,
    free_port,
    post_json,
    project_env,
    url_of_the_test_database,
)

pytestmark = pytest.mark.django_db(transaction=True)  # after-commit refreshes run

SOCKET_TIMEOUT = 0.5
OUTAGE_LOGS = [stock_cache.outage, catalog_cache.outage, ratelimits.outage]


class SilentRedis:
    """Accepts TCP connections on ``port`` and never answers on them."""

    def __init__(self, port: int = 0):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed
                return
            self.connections.append(connection)

    @property
    def accepted(self) -> int:
        return len(self.connections)

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(timeout=5)
        for connection in self.connections:
            connection.close()


def redis_cache(port: int) -> dict:
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "KEY_PREFIX": f"cache-hanging-{uuid.uuid4().hex[:8]}",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": SOCKET_TIMEOUT},
        }
    }


def forget_outages() -> None:
    for log in OUTAGE_LOGS:
        log.failing = False
    cache_outage.reset_circuits()


@pytest.fixture
def shop(db):
    """A store with 10 units of one product, and a clerk's API client (made before the
    cache is pointed anywhere, so that seeding costs no timeout)."""
    store, product = StoreFactory(), ProductFactory()
    clerk = UserFactory()
    MembershipFactory(user=clerk, store=store, role=Role.CLERK)
    stock_receive(store=store, product=product, quantity=10)
    base = f"/api/v1/stores/{store.code}/stock/{product.sku}/"
    return store, product, api_client(clerk), base


@pytest.fixture
def cache_settings(settings):
    settings.RATELIMIT_ENABLE = True
    settings.RATELIMIT_FAIL_OPEN = True
    forget_outages()
    yield settings
    forget_outages()


@pytest.fixture
def silent_redis(cache_settings):
    """The default cache is a Redis that never answers; the circuit stays open for 30 s,
    longer than the test."""
    server = SilentRedis()
    cache_settings.CACHES = redis_cache(server.port)
    cache_settings.CACHE_CIRCUIT_OPEN_SECONDS = 30
    try:
        yield server
    finally:
        server.close()


def read_level(client, base) -> tuple[str, dict]:
    response = client.get(base)
    assert response.status_code == 200, (response.status_code, response.content[:300])
    return response["X-Cache"], response.json()


def test_a_hanging_redis_costs_one_timeout_not_one_per_call(shop, silent_redis):
    store, product, client, base = shop
    reads, purchases, lists = [], [], []

    started = time.monotonic()
    for _ in range(7):
        reads.append(read_level(client, base))
        purchase = client.post(f"{base}purchase/", {"quantity": 1}, format="json")
        purchases.append((purchase.status_code, purchase.json().get("on_hand")))
        products = client.get("/api/v1/products/")
        lists.append((products.status_code, [item["sku"] for item in products.json()["results"]]))
    elapsed = time.monotonic() - started

    # Every answer is right, from the database, and every purchase committed.
    assert [(status, body["source"], body["on_hand"]) for status, body in reads] == [
        ("MISS", "database", 10 - round) for round in range(7)
    ]
    assert purchases == [(200, 9 - round) for round in range(7)]
    assert lists == [(200, [product.sku])] * 7
    assert StockLevel.objects.get(store=store, product=product).on_hand == 3
    assert Movement.objects.filter(store=store, kind=MovementKind.SALE).count() == 7
    # Redis was tried once: 21 requests took one timeout, not three per request.
    assert silent_redis.accepted == 1
    assert elapsed < 3, f"21 requests took {elapsed:.1f} s"
    assert not cache_outage.cache_circuit.closed


def test_after_the_open_period_one_request_tries_redis_and_its_answer_closes_the_circuit(
    shop, cache_settings, tmp_path
):
    """Redis serves an entry, stalls (a purchase meanwhile is not refreshed in it), and
    comes back with its data: the entry from before the stall is never served."""
    store, product, client, base = shop
    cache_settings.CACHE_CIRCUIT_OPEN_SECONDS = 1
    redis = RedisServer(free_port(), tmp_path)
    redis.start()
    cache_settings.CACHES = redis_cache(redis.port)
    try:
        read_level(client, base)
        assert read_level(client, base)[0] == "HIT"  # 10 units, version 1, cached

        redis.stop(keep_data=True)
        silent = SilentRedis(redis.port)
        try:
            first = time.monotonic()
            assert read_level(client, base)[1]["source"] == "database"
            first = time.monotonic() - first
            purchase = client.post(f"{base}purchase/", {"quantity": 4}, format="json")
            assert (purchase.status_code, purchase.json()["on_hand"]) == (200, 6)
            skipped = time.monotonic()
            assert read_level(client, base)[1]["on_hand"] == 6
            skipped = time.monotonic() - skipped
            assert silent.accepted == 1
            assert first >= SOCKET_TIMEOUT and skipped < SOCKET_TIMEOUT, (first, skipped)

            time.sleep(1.1)  # the open period is over: the next request is the trial
            trial = time.monotonic()
            assert read_level(client, base)[1]["on_hand"] == 6
            trial = time.monotonic() - trial
            assert read_level(client, base)[1]["on_hand"] == 6  # skipped again
            assert silent.accepted == 2
            assert trial >= SOCKET_TIMEOUT, trial
        finally:
            silent.close()

        redis.start()  # with the entry of version 1 from before the stall
        time.sleep(1.1)
        status, body = read_level(client, base)
        assert (status, body["on_hand"], body["version"]) == ("MISS", 6, 2)
        status, body = read_level(client, base)
        assert (status, body["on_hand"], body["version"]) == ("HIT", 6, 2)
        assert cache_outage.cache_circuit.closed
    finally:
        redis.stop()


def test_a_skipped_trial_leaves_the_circuit_open_for_other_threads(cache_settings):
    """While one thread's trial waits on Redis, other threads do not wait too."""
    cache_settings.CACHE_CIRCUIT_OPEN_SECONDS = 0
    circuit = cache_outage.Circuit("test")
    with pytest.raises(TimeoutError), circuit:
        raise TimeoutError("no answer")
    assert not circuit.closed
    in_trial, trial_may_end, outcomes = threading.Event(), threading.Event(), []

    def trial():
        with circuit:
            in_trial.set()
            trial_may_end.wait(5)

    def other():
        try:
            with circuit:
                outcomes.append("ran")
        except cache_outage.CircuitOpen:
            outcomes.append("skipped")

    trying = threading.Thread(target=trial)
    trying.start()
    assert in_trial.wait(5)
    for _ in range(3):
        other()
    trial_may_end.set()
    trying.join(5)
    other()

    assert outcomes == ["skipped", "skipped", "skipped", "ran"]
    assert circuit.closed


def test_an_error_reply_does_not_open_the_circuit(cache_settings):
    from redis.exceptions import ResponseError

    circuit = cache_outage.Circuit("test")
    with pytest.raises(ResponseError), circuit:
        raise ResponseError("WRONGTYPE")
    assert circuit.closed


@pytest.mark.services
@pytest.mark.postgresql("the web process shares the test database")
def test_the_web_process_answers_at_once_while_its_cache_and_broker_hang(shop, tmp_path):
    """``bin/run web`` with REDIS_URL at a silent Redis: the cache and the Celery broker
    (the audit relay's message after each write) both hang."""
    store, product, _, base = shop
    clerk = store.memberships.get().user
    token = Token.objects.get(user=clerk).key  # made by the shop fixture
    silent = SilentRedis()
    (tmp_path / "static").mkdir()
    processes = ProjectProcesses(
        project_env(
            DATABASE_URL=url_of_the_test_database(),
            REDIS_URL=f"redis://127.0.0.1:{silent.port}/0",
            CELERY_RESULT_BACKEND="",
            DEBUG="false",
            SECRET_KEY="cache-hanging-" + uuid.uuid4().hex * 2,
            ALLOWED_HOSTS="127.0.0.1",
            WEB_CONCURRENCY="1",  # one process: one circuit
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
            STATIC_ROOT=str(tmp_path / "static"),
        ),
        tmp_path,
    )
    try:
        port = processes.start_web()
        answers = []
        started = time.monotonic()
        for _ in range(5):
            answers.append(post_json(port, f"{base}purchase/", {"quantity": 1}, token, timeout=10))
            answers.append(get_json(port, base, token))
            answers.append(get_json(port, "/api/v1/products/", token))
        elapsed = time.monotonic() - started
    finally:
        processes.stop_all()
        silent.close()

    log = (tmp_path / "web.log").read_text()
    assert [status for status, _ in answers] == [200] * 15, log[-3000:]
    assert [body["on_hand"] for _, body in answers[0::3]] == [9, 8, 7, 6, 5]
    assert [body["on_hand"] for _, body in answers[1::3]] == [9, 8, 7, 6, 5]
    assert StockLevel.objects.get(store=store, product=product).on_hand == 5
    # One timeout for the cache and one send for the broker (kombu tries twice).
    assert elapsed < 5, f"15 requests took {elapsed:.1f} s"
    assert "the Celery broker did not answer" in log


def get_json(port: int, path: str, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Token {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except OSError as error:
        return 0, {"error": repr(error)}
