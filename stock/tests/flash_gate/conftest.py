import contextlib
import dataclasses
import select
import subprocess
import threading
import uuid

import pytest
from django.db import connection

from stock import flash_gate
from stock.exceptions import InsufficientStock
from stock.flash_gate.process import view
from stock.flash_gate.services import gate_state, gate_switch
from stock.flash_gate.tokens import LevelKeys
from stock.models import StockLevel
from stock.services import stock_purchase, stock_receive
from stores.models import Role
from tests.api import api_client
from tests.factories import ProductFactory, member
from tests.processes import (
    ROOT,
    RedisServer,
    free_port,
    project_env,
    redis_cache,
    redis_url,
    stop,
    url_of_the_test_database,
)

# The gate's tokens live in Redis: without it (the embedded mode) there is no gate.
# (A conftest's own pytestmark marks nothing: each test module applies this one.)
NEEDS_REDIS = pytest.mark.services("the flash-sale gate keeps its tokens in Redis")

# Buyers the gate let through that may hold a database session at once: the PostgreSQL
# server has 100 connection slots, shared with every other test running on it.
DATABASE_SESSIONS = 16


@pytest.fixture
def gated(store, product):
    """``product`` in ``store`` with 10 units and its gate on."""
    stock_receive(store=store, product=product, quantity=10)
    gate_switch(store=store, product=product, enabled=True)
    return store, product


def tokens_of(store, product) -> int | None:
    return gate_state(store=store, product=product)["tokens"]


def redis_state(store, product):
    return view.tokens.state(LevelKeys.of(store.pk, product.pk))


# --- The API's and the command's: TEE in berlin-01 and its people ---------------------

GATE = "/api/v1/stores/berlin-01/stock/TEE/gate/"


@pytest.fixture
def tee_in_berlin(berlin, tee):
    """10 T-shirts in berlin-01, their gate off."""
    stock_receive(store=berlin, product=tee, quantity=10)
    return berlin, tee


@pytest.fixture
def mug_in_berlin(berlin):
    """1 mug in berlin-01, a level never gated: a cart may hold it with T-shirts."""
    mug = ProductFactory(sku="MUG", name="Mug")
    stock_receive(store=berlin, product=mug, quantity=1)
    return berlin, mug


@pytest.fixture
def clerk_api(berlin):
    """An API client with the token of a clerk of berlin-01 (who buys, and may not
    switch gates)."""
    return api_client(member("berlin-clerk", berlin, Role.CLERK))


@contextlib.contextmanager
def as_a_process_that_has_not_read_the_registry():
    """Changes made in the block come from a process that does not know any level is
    gated yet (it reads the registry once a period): they tell the gate nothing."""
    view.gated, view._read_at = frozenset(), float("inf")
    try:
        yield
    finally:
        view.read_again()


def available_of(store, product) -> int:
    return StockLevel.objects.get(store=store, product=product).available


# --- Buyers in real threads -----------------------------------------------------------


def is_purchase_statement(sql: str) -> bool:
    """The guarded sale: the UPDATE of the level that carries the invariant."""
    return f"UPDATE {connection.ops.quote_name(StockLevel._meta.db_table)}" in sql


@dataclasses.dataclass
class Buyer:
    """What one purchase got (``sold``, with its ledger row, ``refused`` or ``error``) and
    every statement its thread sent to the database meanwhile, counted as they ran
    (``connection.execute_wrapper``)."""

    outcome: str = "error"
    movement_id: int | None = None
    error: BaseException | None = None
    statements: list[str] = dataclasses.field(default_factory=list)

    @property
    def purchase_statements(self) -> int:
        return sum(1 for sql in self.statements if is_purchase_statement(sql))


@pytest.fixture
def buy_together(monkeypatch):
    """``buy_together(store, product, threads, attempts=1)`` starts ``threads`` real
    threads at the same moment (a barrier) that each make ``attempts`` purchases of one
    unit in a row, and returns a ``Buyer`` per purchase. ``during()`` (optional) runs in
    the test's thread once ``when_sold`` purchases have succeeded, while the others go on.

    A buyer the gate refuses never opens a database connection; one it lets through (or
    that goes to the database because Redis failed) waits for one of
    ``DATABASE_SESSIONS`` slots, and closes its connection when its purchase ends.
    """
    real_admit = flash_gate.admit
    sessions = threading.BoundedSemaphore(DATABASE_SESSIONS)
    local = threading.local()

    def admit_then_wait_for_a_session(store, lines):
        admission = real_admit(store, lines)  # raises when the gate refuses
        sessions.acquire()
        local.session = True
        return admission

    monkeypatch.setattr(flash_gate, "admit", admit_then_wait_for_a_session)

    def purchase(store, product, result: Buyer):
        local.session = False

        def count(execute, sql, params, many, context):
            result.statements.append(sql)
            return execute(sql, params, many, context)

        try:
            with connection.execute_wrapper(count):
                level = stock_purchase(store=store, product=product, quantity=1)
            result.outcome, result.movement_id = "sold", level.movement_id
        except InsufficientStock:
            result.outcome = "refused"
        except BaseException as error:  # noqa: BLE001 - reported by the test
            result.outcome, result.error = "error", error
        finally:
            connection.close()
            if local.session:
                sessions.release()

    def run(store, product, threads, *, attempts=1, during=None, when_sold=0, timeout=120):
        barrier = threading.Barrier(threads + 1, timeout=timeout)
        results = [[Buyer() for _ in range(attempts)] for _ in range(threads)]
        sold = threading.Semaphore(0)

        def buy(mine: list[Buyer]):
            barrier.wait()
            for result in mine:
                purchase(store, product, result)
                if result.outcome == "sold":
                    sold.release()

        started = [threading.Thread(target=buy, args=(mine,)) for mine in results]
        for thread in started:
            thread.start()
        barrier.wait()
        if during is not None:
            for _ in range(when_sold):
                assert sold.acquire(timeout=timeout), "the sale stopped before the moment"
            during()
        for thread in started:
            thread.join(timeout)
        assert not any(thread.is_alive() for thread in started), "a buyer is still waiting"
        return [result for mine in results for result in mine]

    return run


# --- A Redis of the test's own, which it may stop -------------------------------------


@pytest.fixture
def own_redis(settings, tmp_path):
    """A private redis-server as the default cache (the gate's Redis), stoppable and
    restartable; the gate's per-process view is reset with the setting."""
    if not RedisServer.available():
        pytest.skip("needs the redis-server binary on PATH")
    from inventory_site import cache_outage
    from stock.flash_gate import process

    server = RedisServer(free_port(), tmp_path)
    server.start()
    settings.CACHES = redis_cache(server.port, f"gate-outage-{uuid.uuid4().hex[:8]}")
    settings.CACHE_CIRCUIT_OPEN_SECONDS = 0.2
    cache_outage.reset_circuits()
    try:
        yield server
    finally:
        server.stop()
        process.outage.failing = False
        cache_outage.reset_circuits()


# --- Another process on the same database and Redis -----------------------------------

# Run by ``manage.py shell -c`` in the child: it looks the level up, makes one change
# that reads the gate registry (a reorder point: the version and the tokens stay), says
# "ready", then applies each command it reads ("receive 5", "adjust -4") and says "done".
OTHER_PROCESS = """
import sys
from catalog.models import Product
from stock.services import stock_adjust, stock_receive, stock_set_reorder_point
from stores.models import Store
store, product = Store.objects.get(pk={store}), Product.objects.get(pk={product})
stock_set_reorder_point(store=store, product=product, reorder_point=0)
print("ready", flush=True)
for line in sys.stdin:
    command, units = line.split()
    if command == "receive":
        stock_receive(store=store, product=product, quantity=int(units))
    else:
        stock_adjust(store=store, product=product, delta=int(units), reason="correction")
    print("done", flush=True)
"""


class OtherProcess:
    """A ``bin/run owner shell`` child changing one level through the services, on the
    test database and the test's Redis, one command at a time."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self._expect("ready")

    def send(self, command: str) -> None:
        self.process.stdin.write(f"{command}\n")
        self.process.stdin.flush()
        self._expect("done")

    def _expect(self, word: str, timeout: float = 60) -> None:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        assert line.strip() == word, f"the other process said {line!r}, not {word!r}"


@pytest.fixture
def other_process(transactional_db, settings, tmp_path):
    """``other_process(store, product, **settings)``: an ``OtherProcess`` once it is ready;
    it shares the test's database, Redis and cache key prefix. Stopped at teardown."""
    started = []

    def start(store, product, **variables):
        env = project_env(
            DATABASE_URL=url_of_the_test_database(),
            REDIS_URL=redis_url(),
            CACHE_KEY_PREFIX=settings.CACHES["default"]["KEY_PREFIX"],
            **variables,
        )
        code = OTHER_PROCESS.format(store=store.pk, product=product.pk)
        process = subprocess.Popen(
            ["bin/run", "owner", "shell", "--no-imports", "-c", code],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(tmp_path / f"other-{len(started)}.log", "w"),
            text=True,
            start_new_session=True,
        )
        started.append(process)
        return OtherProcess(process)

    yield start
    for process in started:
        process.stdin.close()
        stop(process)
