"""Fixtures shared by every test module."""

import contextlib
import dataclasses
import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from inventory_site.query_plans import LARGE_TABLES
from stores.models import Role
from tests import app_role
from tests.factories import ProductFactory, StoreFactory, member
from tests.processes import machine_lock

DEFAULT_POSTGRESQL_REASON = (
    "SQLite takes one lock for the whole database, so row-level races cannot happen "
    "there (run with DATABASE_URL set)"
)
DEFAULT_SERVICES_REASON = (
    "embedded mode has no broker and runs Celery tasks in-process (run with REDIS_URL set)"
)


def pytest_collection_modifyitems(config, items):
    """Skip what the current mode cannot run, saying why."""
    on_postgresql = connection.vendor == "postgresql"
    has_broker = not settings.CELERY_TASK_ALWAYS_EAGER
    for item in items:
        postgresql = item.get_closest_marker("postgresql")
        if postgresql and not on_postgresql:
            why = postgresql.args[0] if postgresql.args else DEFAULT_POSTGRESQL_REASON
            item.add_marker(pytest.mark.skip(reason=f"needs PostgreSQL: {why}"))
        services = item.get_closest_marker("services")
        if services and not has_broker:
            why = services.args[0] if services.args else DEFAULT_SERVICES_REASON
            item.add_marker(pytest.mark.skip(reason=f"needs the services mode: {why}"))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """With DATABASE_APP_ROLE set (PostgreSQL) the suite runs as a deployment does: the
    connecting user, the owner, has created and migrated the test database; the role is
    granted what the app may do, and every connection after runs as the role."""
    role = app_role.active_role()
    if not role:
        yield
        return
    with django_db_blocker.unblock(), machine_lock("app-role"):
        call_command("grant_app_role", role, stdout=io.StringIO())
    with app_role.connections_as(role):
        yield


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache: the database is rolled back between tests,
    so entries a previous test left would describe rows that no longer exist."""
    from django.core.cache import cache

    from catalog import cache as catalog_cache
    from events.webhooks import wakeups
    from events.webhooks.registry import active_stores
    from inventory_site import cache_outage, lookup_cache
    from inventory_site.api import gate, ratelimits
    from stock import cache as stock_cache
    from stock.flash_gate import process as flash_gate_process

    stock_cache.stock_level_cache.reset()
    active_stores.read_again()
    wakeups.covered.clear()
    flash_gate_process.view.reset()
    gate.reset()
    lookup_cache.lookups.clear_local()
    for module in (stock_cache, catalog_cache, ratelimits, lookup_cache, flash_gate_process):
        module.outage.failing = False
    cache_outage.reset_circuits()
    try:
        cache.clear()
    except Exception:  # noqa: BLE001 - a test may point CACHES at a dead server
        pass
    yield


# --- Berlin, Hamburg, a T-shirt and Berlin's people ---------------------------------
# The stores, product and members the tests of several apps name. Where a test needs
# another shape (another SKU, a manager of both stores, a user of no store), its module
# or its app's conftest defines a fixture of the same name, which wins.


@pytest.fixture
def berlin(db):
    return StoreFactory(code="berlin-01", name="Berlin")


@pytest.fixture
def hamburg(db):
    return StoreFactory(code="hamburg-01", name="Hamburg")


@pytest.fixture
def tee(db):
    return ProductFactory(sku="TEE", name="T-shirt")


@pytest.fixture
def manager(berlin):
    return member("manager", berlin, Role.MANAGER)


@pytest.fixture
def clerk(berlin):
    return member("clerk", berlin, Role.CLERK)


@pytest.fixture
def viewer(berlin):
    return member("viewer", berlin, Role.VIEWER)


@dataclasses.dataclass(frozen=True)
class RecordedStatement:
    """One SQL statement the default connection sent, and whether it ran as its own
    transaction: autocommit on and outside any ``atomic`` block, so Django sent no BEGIN
    before it and no COMMIT after (the database committed it as it ended)."""

    sql: str
    own_transaction: bool

    def touches(self, table: str) -> bool:
        return f'"{table}"' in self.sql

    @property
    def locks(self) -> bool:
        return "FOR UPDATE" in self.sql.upper()


@pytest.fixture
def record_statements():
    """``with record_statements() as statements:`` lists (``RecordedStatement``) every
    statement the default connection sends in the block, through
    ``connection.execute_wrapper``, in order. Django's transaction control (BEGIN,
    COMMIT) does not pass there, but savepoints do; ``own_transaction`` tells the rest."""

    @contextlib.contextmanager
    def record():
        statements = []

        def wrapper(execute, sql, params, many, context):
            own = connection.get_autocommit() and not connection.in_atomic_block
            statements.append(RecordedStatement(sql, own))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(wrapper):
            yield statements

    return record


class RedisRoundTrips:
    """Round trips this thread made to Redis: each is one send of one command, or of a
    whole pipeline, on a real connection."""

    def __init__(self):
        self.sent: list[bytes] = []

    def __len__(self):
        return len(self.sent)

    def commands(self) -> list[str]:
        """The first command name of each round trip, for assertion messages."""
        return [packed.split(b"\r\n")[2].decode(errors="replace") for packed in self.sent]


@pytest.fixture
def redis_round_trips(monkeypatch):
    """Counts the round trips to Redis made by this thread while the test runs
    (``with redis_round_trips() as trips``), by wrapping redis-py's send (the real send
    still happens)."""
    import contextlib
    import threading

    from redis.connection import AbstractConnection

    real_send = AbstractConnection.send_packed_command
    active: list[RedisRoundTrips] = []
    thread = threading.get_ident()

    def counting_send(connection, command, check_health=True):
        if active and threading.get_ident() == thread:
            packed = command if isinstance(command, bytes) else b"".join(command)
            active[-1].sent.append(packed[:200])
        return real_send(connection, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting_send)

    @contextlib.contextmanager
    def counting():
        trips = RedisRoundTrips()
        active.append(trips)
        try:
            yield trips
        finally:
            active.remove(trips)

    return counting


# --- Query plans --------------------------------------------------------------------

SORT_NODES = {"Sort", "Incremental Sort"}


@dataclasses.dataclass(frozen=True)
class ReadPlan:
    """A statement that read a large table, and PostgreSQL's plan for it."""

    sql: str
    plan: dict

    def nodes(self, node=None, above=()):
        """(node, the nodes above it) for every node of the plan."""
        node = node or self.plan
        yield node, above
        for child in node.get("Plans", []):
            yield from self.nodes(child, (*above, node))

    def reads(self, node) -> set[str]:
        """The large tables ``node`` and the nodes under it read."""
        return {
            inner["Relation Name"]
            for inner, _ in self.nodes(node)
            if inner.get("Relation Name") in LARGE_TABLES
        }

    @property
    def indexes(self) -> set[str]:
        return {node["Index Name"] for node, _ in self.nodes() if "Index Name" in node}

    def problems(self, *, whole_tables: bool = False) -> list[str]:
        """What reads a large table in full or sorts its rows: a sequential scan; an
        index read from end to end (no index condition, no LIMIT above it), unless
        ``whole_tables`` (a check of every row); a sort of its rows (one over a LIMITed
        inner query, a few rows, is none); a subquery run once per row around it."""
        found = []
        for node, above in self.nodes():
            kind, table = node["Node Type"], node.get("Relation Name")
            if table in LARGE_TABLES and kind == "Seq Scan":
                found.append(f"Seq Scan on {table}")
            if (
                table in LARGE_TABLES
                and kind in ("Index Scan", "Index Only Scan")
                and "Index Cond" not in node
                and not any(outer["Node Type"] == "Limit" for outer in above)
                and not whole_tables
            ):
                found.append(f"{kind} of all of {table} ({node['Index Name']})")
            if kind in SORT_NODES and self._reads_unlimited(node):
                found.append(f"{kind} of {sorted(self.reads(node))} by {node['Sort Key']}")
            if node.get("Parent Relationship") == "SubPlan" and self.reads(node):
                found.append(f"SubPlan per row reading {sorted(self.reads(node))}")
        return found

    def _reads_unlimited(self, node) -> bool:
        if node["Node Type"] == "Limit":
            return False
        if node.get("Relation Name") in LARGE_TABLES:
            return True
        return any(self._reads_unlimited(child) for child in node.get("Plans", []))


@pytest.fixture
def read_plans():
    """``with read_plans() as plans:`` runs the block, then has PostgreSQL plan again
    each SELECT it sent that reads a large table (``LARGE_TABLES``), with sequential
    scans and sorts priced out (``enable_seqscan``, ``enable_sort`` and
    ``enable_incremental_sort`` off): the planner
    then chooses one only where no index can serve, so a plan with one shows an index
    missing even on a test's few rows. A ``SET LOCAL`` the block sent applies to the
    statements after it, as it did. ``plans`` holds a ``ReadPlan`` per statement."""
    from django.db import transaction

    from inventory_site.query_plans import query_plan

    @contextlib.contextmanager
    def explain():
        sent = []

        def wrapper(execute, sql, params, many, context):
            sent.append((sql, params))
            return execute(sql, params, many, context)

        plans: list[ReadPlan] = []
        with connection.execute_wrapper(wrapper):
            yield plans
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off;"
                    " SET LOCAL enable_incremental_sort = off"
                )
                for sql, params in sent:
                    statement = sql.lstrip().upper()
                    if statement.startswith("SET LOCAL"):  # the block's own plan settings
                        cursor.execute(sql, params)
                    elif statement.startswith(("SELECT", "WITH")) and any(
                        f'"{table}"' in sql for table in LARGE_TABLES
                    ):
                        plans.append(ReadPlan(sql, query_plan(sql, params)))
            transaction.set_rollback(True)

    return explain
