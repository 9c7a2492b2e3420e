"""The router in-process, with the real replica as the alias ``replica_1``: which
database each read of a request goes to, and a replica that fails under a read.

The alias is added for these tests only (the suite runs without replicas: its TestCase
data, never committed, could not be seen on one), and its connection carries the write
guard for as long as it exists."""

import pytest
from django.db import OperationalError, connections
from django.db.utils import load_backend
from django.test import RequestFactory

from inventory_site.replicas.routing import (
    ReplicaRouter,
    RequestReads,
    _request_reads,
    replica_reads,
    replicas,
)
from inventory_site.replicas.statements import guard_replica
from stock.models import Movement
from stock.selectors import recent_movements_by_product
from stock.services import stock_receive
from stores.models import Store
from tests.factories import ProductFactory, StoreFactory

from .replica import primary_position

pytestmark = pytest.mark.postgresql("the replica is a PostgreSQL standby")

ALIAS = "replica_1"


@pytest.fixture
def replica_alias(replica, settings):
    """``replica_1`` on the replica's copy of the test database, the router installed,
    every statement sent there guarded; closed and removed at the end.

    The connection is made as Django makes one, but not listed in DATABASES: the test
    runner would make a listed alias a mirror of the primary (TEST MIRROR), and refuse
    it to a test that does not name it."""
    primary = connections["default"].settings_dict
    replica_settings = {**primary, "HOST": replica.host, "PORT": replica.port}
    connections[ALIAS] = load_backend(primary["ENGINE"]).DatabaseWrapper(replica_settings, ALIAS)
    connections[ALIAS].execute_wrappers.append(guard_replica(ALIAS))
    settings.REPLICA_DATABASES = [ALIAS]
    settings.REPLICA_MAX_LAG_SECONDS = 3600
    settings.DATABASE_ROUTERS = [ReplicaRouter()]
    replicas.reset()
    try:
        yield
    finally:
        replicas.reset()
        connections[ALIAS].close()
        del connections[ALIAS]


def get_request(**headers) -> RequestReads:
    return RequestReads(RequestFactory().get("/api/v1/stores/", headers=headers))


def store_codes_read(reads: RequestReads) -> tuple[list[str], bool]:
    """(the store codes a list read inside ``replica_reads`` sees, whether a replica
    served it) in ``reads``' request."""
    context = _request_reads.set(reads)
    try:
        codes = replica_reads(lambda: sorted(Store.objects.values_list("code", flat=True)))()
    finally:
        _request_reads.reset(context)
    return codes, reads.served_by_replica


def test_a_request_reads_the_replica_as_of_its_replay_and_the_primary_for_its_token(
    replica, replica_alias
):
    StoreFactory(code="before")
    replica.wait_for_replay()
    replica.pause()
    StoreFactory(code="during-the-pause")
    written = primary_position()

    assert store_codes_read(get_request()) == (["before"], True)
    assert store_codes_read(get_request(X_Consistency_Token=written)) == (
        ["before", "during-the-pause"],
        False,
    )
    replica.resume()
    replica.wait_for_replay(written)
    assert store_codes_read(get_request(X_Consistency_Token=written)) == (
        ["before", "during-the-pause"],
        True,
    )


def test_a_replica_that_fails_under_a_read_is_skipped_and_the_read_runs_on_the_primary(
    replica, replica_alias, settings
):
    settings.REPLICA_DOWN_SECONDS = 60
    StoreFactory(code="only")
    replica.wait_for_replay()
    assert store_codes_read(get_request()) == (["only"], True)  # the status is now known
    # The replica ends the process's session there, as a restart would.
    pid = connections[ALIAS].connection.info.backend_pid
    replica.sql("SELECT pg_terminate_backend(%s)", [pid])

    assert store_codes_read(get_request()) == (["only"], False)
    # Skipped for REPLICA_DOWN_SECONDS: not even asked.
    assert not replicas.circuit(ALIAS).closed
    assert store_codes_read(get_request()) == (["only"], False)
    assert connections[ALIAS].connection is None


def test_an_error_of_the_primary_after_a_replica_read_is_raised_once_and_blames_no_replica(
    replica, replica_alias
):
    """A statement timeout on the primary is the primary's: the function is not run
    again (the primary would get the slow query twice) and the replica stays in use."""
    StoreFactory(code="only")
    replica.wait_for_replay()
    runs = []

    def list_then_time_out_on_the_primary():
        runs.append(sorted(Store.objects.values_list("code", flat=True)))
        with connections["default"].cursor() as cursor:
            cursor.execute("SET statement_timeout = 50")
            try:
                cursor.execute("SELECT pg_sleep(5)")
            finally:
                cursor.execute("RESET statement_timeout")

    reads = get_request()
    context = _request_reads.set(reads)
    try:
        with pytest.raises(OperationalError, match="statement timeout"):
            replica_reads(list_then_time_out_on_the_primary)()
    finally:
        _request_reads.reset(context)

    assert runs == [["only"]]
    assert (reads.replica, reads.used) == (ALIAS, True)  # the list was the replica's
    assert replicas.circuit(ALIAS).closed
    assert store_codes_read(get_request()) == (["only"], True)


def test_the_low_stock_pages_recent_movements_come_from_one_database(replica, replica_alias):
    """Their ids and their rows are read where the router sends movement reads: on the
    replica, its latest movements, not the primary's ids with the rows it lacks left
    out."""
    store, product = StoreFactory(code="berlin-01"), ProductFactory(sku="HOODIE")
    for _ in range(3):
        stock_receive(store=store, product=product, quantity=1)
    replicated = list(Movement.objects.order_by("-pk").values_list("pk", flat=True))
    replica.wait_for_replay()
    replica.pause()
    stock_receive(store=store, product=product, quantity=1)  # not on the paused replica

    reads = get_request()
    context = _request_reads.set(reads)
    try:
        recent = replica_reads(recent_movements_by_product)(store, [product], per_product=2)
    finally:
        _request_reads.reset(context)

    assert {key: [movement.pk for movement in rows] for key, rows in recent.items()} == {
        product.pk: replicated[:2]
    }
    assert reads.served_by_replica


def test_the_write_guard_is_on_the_replica_connection(replica_alias):
    from inventory_site.replicas.statements import WriteReachedReplica

    with pytest.raises(WriteReachedReplica):
        Store.objects.using(ALIAS).create(code="never", name="Never")
