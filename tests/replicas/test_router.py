"""The router's decisions in-process, without a replica: what must stay on the primary
never asks for one, whatever the request. (The replica itself is in the other tests.)"""

import threading

import pytest
from django.db import connection, transaction
from django.test import RequestFactory

from inventory_site.replicas import positions
from inventory_site.replicas.routing import (
    PRIMARY,
    ReplicaRouter,
    RequestReads,
    _request_reads,
    replica_reads,
    replicas,
)
from inventory_site.replicas.statements import WriteReachedReplica, guard_replica, writes
from stores.models import Store

# No such alias: a decision that consulted a replica would fail on it.
NO_SUCH_REPLICA = "replica_that_must_not_be_asked"


@pytest.fixture
def replica_configured(settings):
    settings.REPLICA_DATABASES = [NO_SUCH_REPLICA]
    replicas.reset()
    yield
    replicas.reset()


def in_request(method: str, **headers) -> RequestReads:
    request = getattr(RequestFactory(), method.lower())("/api/v1/stores/", headers=headers)
    return RequestReads(request)


def read_alias(reads: RequestReads) -> str:
    """Where the router sends a read made in ``replica_reads`` during ``reads``' request."""
    context = _request_reads.set(reads)
    try:
        return replica_reads(lambda: ReplicaRouter().db_for_read(Store))()
    finally:
        _request_reads.reset(context)


@pytest.mark.parametrize(
    "sql",
    [
        'INSERT INTO "stock_movement" ("kind") VALUES (%s)',
        '  update "stock_stocklevel" SET "on_hand" = 1',
        'DELETE FROM "django_session" WHERE "session_key" = %s',
        'WITH u AS (UPDATE "stock_stocklevel" SET x = 1 RETURNING id) INSERT INTO m SELECT 1',
        'SELECT "id" FROM "stock_stocklevel" WHERE "id" IN (1, 2) ORDER BY "id" FOR UPDATE',
        'SELECT "id" FROM "stock_bulkjob" FOR NO KEY UPDATE SKIP LOCKED',
        'SELECT 1 FROM "stores_store" FOR SHARE',
        'CREATE TABLE "x" ("id" integer)',
        'TRUNCATE "audit_auditevent"',
        "SELECT pg_advisory_lock(1); DELETE FROM x",
        'EXPLAIN ANALYZE INSERT INTO "x" VALUES (1)',
        "LOCK TABLE x",
    ],
)
def test_statements_that_change_or_lock_count_as_writes(sql):
    assert writes(sql)


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT "stores_store"."id" FROM "stores_store" WHERE "code" = %s LIMIT 1',
        'SELECT "updated_at", "deleted" FROM "x"',
        "WITH first_rows AS (SELECT 1) SELECT count(*) FROM first_rows",
        'EXPLAIN (FORMAT JSON) SELECT "id" FROM "stock_movement"',
        "SHOW data_directory",
        "SAVEPOINT s1",
        'RELEASE SAVEPOINT "s1"',
        "SELECT pg_current_wal_lsn()::text",
    ],
)
def test_plain_reads_do_not(sql):
    assert not writes(sql)


def test_positions_read_and_write_as_postgresql_does():
    assert positions.position("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert positions.token(positions.position("16/B374D848")) == "16/B374D848"
    assert positions.position("0/1") < positions.position("0/10") < positions.position("1/0")
    assert positions.position(None) is None
    for garbled in ("", "16", "16/", "/1", "G/1", "1/2/3", "123456789/0", " 1 / 2"):
        assert positions.position(garbled) == positions.UNREACHABLE, garbled


@pytest.mark.django_db
def test_the_writer_guard_refuses_a_write_and_lets_a_read_through():
    """On the primary's own connection here: the guard looks at the statement only."""
    with connection.execute_wrapper(guard_replica("replica_1")):
        assert Store.objects.count() == 0
        refused = pytest.raises(WriteReachedReplica, match="a write reached the replica replica_1")
        with refused, transaction.atomic():
            Store.objects.create(code="guarded", name="Guarded")
        if connection.features.has_select_for_update:  # SQLite sends no FOR UPDATE
            with pytest.raises(WriteReachedReplica), transaction.atomic():
                list(Store.objects.select_for_update())
    assert not Store.objects.filter(code="guarded").exists()


def test_outside_a_request_every_read_is_the_primarys(replica_configured):
    """Celery tasks, commands: no request state."""
    assert replica_reads(lambda: ReplicaRouter().db_for_read(Store))() == PRIMARY


def test_a_request_outside_replica_reads_reads_the_primary(replica_configured):
    reads = in_request("GET")
    context = _request_reads.set(reads)
    try:
        assert ReplicaRouter().db_for_read(Store) == PRIMARY
    finally:
        _request_reads.reset(context)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_request_that_may_write_reads_the_primary_even_in_replica_reads(
    replica_configured, method
):
    assert read_alias(in_request(method)) == PRIMARY


def test_a_get_that_wrote_reads_the_primary_from_then_on(replica_configured):
    reads = in_request("GET")
    reads.note_statement(lambda *args: None, 'UPDATE "x" SET "y" = 1', None, False, {})
    assert reads.wrote
    assert read_alias(reads) == PRIMARY


@pytest.mark.django_db
def test_a_read_inside_a_transaction_reads_the_primary(replica_configured):
    """A TestCase-style test runs inside ``atomic``, as a service's reads do."""
    assert connection.in_atomic_block
    assert read_alias(in_request("GET")) == PRIMARY


def test_a_garbled_token_never_asks_a_replica(replica_configured, settings):
    assert replicas.choose(positions.position("not a position")) is None


def test_writes_are_always_the_primarys():
    assert ReplicaRouter().db_for_write(Store) == PRIMARY
    assert ReplicaRouter().allow_migrate(PRIMARY, "stock")
    assert not ReplicaRouter().allow_migrate("replica_1", "stock")


def test_each_thread_sees_only_its_own_requests_state():
    """The state is a ContextVar: gunicorn's threads (and asyncio tasks) never share it."""
    barrier, seen = threading.Barrier(2), {}

    def serve(name, method):
        reads = in_request(method)
        context = _request_reads.set(reads)
        try:
            barrier.wait(5)
            seen[name] = _request_reads.get() is reads and _request_reads.get().safe
        finally:
            _request_reads.reset(context)

    threads = [
        threading.Thread(target=serve, args=("get", "GET")),
        threading.Thread(target=serve, args=("post", "POST")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert seen == {"get": True, "post": False}
    assert _request_reads.get() is None
