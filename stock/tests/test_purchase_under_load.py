"""A flash sale through the real HTTP stack: 200 buyers, 50 units, 4 app-server workers.

The app runs as it is deployed, ``bin/run web`` (gunicorn, several worker processes, each
with its own database connections) on the test database, and the buyers are threads
sending real HTTP requests at the same moment. Exactly the stocked units are sold, every
other buyer gets a 409, and the stock level, its version and its ledger agree afterwards.
"""

import os
import subprocess
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from rest_framework.authtoken.models import Token

from stock.models import Movement, MovementKind, StockLevel
from stock.selectors import stock_levels_with_ledger_drift
from stock.services import stock_receive
from stores.models import Role
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory
from tests.processes import (
    ROOT,
    answers_health,
    free_port,
    post_json,
    project_env,
    stop,
    url_of_the_test_database,
    wait_until,
)

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]

UNITS = 50
BUYERS = 200
THREADS = 200  # one buyer per thread: all 200 requests in flight together
WORKERS = 4
TIMEOUT = 60


@pytest.fixture
def web_server(transactional_db, tmp_path):
    """``bin/run web`` on the test database; yields its port. The whole process group is
    stopped at teardown, before the test database is flushed."""
    port = free_port()
    env = project_env(
        DATABASE_URL=url_of_the_test_database(),
        DEBUG="false",
        SECRET_KEY="purchase-under-load-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1",
        API_RATE_PER_USER="100000/m",
        API_RATE_PER_IP="100000/m",
        CACHE_KEY_PREFIX=f"purchase-under-load-{uuid.uuid4().hex}",
        PORT=str(port),
        BIND_ADDRESS="127.0.0.1",
        WEB_CONCURRENCY=str(WORKERS),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        STATIC_ROOT=str(tmp_path / "static"),
    )
    (tmp_path / "static").mkdir()
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    log = open(tmp_path / "web.log", "w+")
    process = subprocess.Popen(
        # No control socket: by default every gunicorn shares ~/.gunicorn/gunicorn.ctl.
        ["bin/run", "web", "--no-control-socket"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        started = wait_until(
            lambda: process.poll() is not None or answers_health(port), timeout=30, interval=0.2
        )
        if not started or process.poll() is not None:
            log.seek(0)
            pytest.fail(f"bin/run web did not start:\n{log.read()[-3000:]}")
        yield port
    finally:
        stop(process)
        log.close()


def test_200_buyers_over_http_for_50_units_exactly_50_are_sold(web_server):
    store, product = StoreFactory(), ProductFactory()
    stock_receive(store=store, product=product, quantity=UNITS)
    clerk = UserFactory()
    MembershipFactory(user=clerk, store=store, role=Role.CLERK)
    token = Token.objects.create(user=clerk).key
    path = f"/api/v1/stores/{store.code}/stock/{product.sku}/purchase/"
    barrier = threading.Barrier(THREADS, timeout=TIMEOUT)

    def buyer_thread() -> list[tuple[int, dict]]:
        barrier.wait()
        return [
            post_json(web_server, path, {"quantity": 1}, token) for _ in range(BUYERS // THREADS)
        ]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(buyer_thread) for _ in range(THREADS)]
        answers = [answer for future in futures for answer in future.result(timeout=2 * TIMEOUT)]

    outcomes = Counter((status, body.get("code")) for status, body in answers)
    assert outcomes == {(200, None): UNITS, (409, "insufficient_stock"): BUYERS - UNITS}, outcomes
    sold = [body for status, body in answers if status == 200]
    # Every sale saw its own level: no two buyers were handed the same unit.
    assert sorted(body["on_hand"] for body in sold) == list(range(UNITS))
    assert sorted(body["version"] for body in sold) == list(range(2, UNITS + 2))
    refused = [body for status, body in answers if status == 409]
    assert {body["available"] for body in refused} == {0}
    level = StockLevel.objects.get(store=store, product=product)
    assert (level.on_hand, level.reserved, level.version) == (0, 0, UNITS + 1)
    sales = Movement.objects.filter(store=store, product=product, kind=MovementKind.SALE)
    assert sales.count() == UNITS
    assert list(stock_levels_with_ledger_drift()) == []
