"""What must never touch a replica, counted on the replica itself: the reads that decide
a sale (purchase, reservation, commit, release, transfer, bulk job) and every read of a
request that wrote. The replica's ``pg_stat_database`` counts the sessions and
transactions the web process opened there."""

import pytest
from django.db import connection

from inventory_site.replicas.positions import position
from stock.models import Movement

from .endpoints import sale_deciding_writes
from .replica import primary_position, primary_sql, wait

pytestmark = pytest.mark.postgresql("the replica is a PostgreSQL standby")

MOVEMENTS = "/api/v1/stores/berlin-01/movements/"


def settled(replica) -> tuple[int, int]:
    """The replica's counters once every session on the test database there has ended:
    a backend counts its session as it starts but its transactions as it exits, before
    it leaves ``pg_stat_activity``."""
    assert wait(lambda: replica.sessions_open() == 0, timeout=15)
    return replica.activity()


def test_no_write_and_no_read_that_decides_a_sale_reaches_the_replica(replica, start_web):
    web = start_web(replica.url(), REPLICA_MAX_LAG_SECONDS="3600")
    assert web.get(MOVEMENTS).served_by == "replica"  # the process has met the replica
    before = settled(replica)

    answers = sale_deciding_writes(web)

    assert [(what, answered) for what, _, answered in answers] == [
        (what, expected) for what, expected, _ in answers
    ]
    # Nothing was opened on the replica: not a session, not a transaction.
    assert settled(replica) == before
    # ... and the count would have shown one: a list read is one session there.
    read = web.get(MOVEMENTS)
    assert (read.status, read.served_by) == (200, "replica")
    assert wait(lambda: replica.activity()[0] == before[0] + 1, timeout=15)
    sessions, transactions = settled(replica)
    assert sessions == before[0] + 1 and transactions > before[1]


def test_a_writes_token_is_past_its_commit_and_ahead_of_a_replica_that_lacks_it(replica, start_web):
    """The token of a purchase: the primary has reached it, a replica paused before the
    write has not (so it is no earlier position), and the WAL record that commits the
    purchase's movement ends at or before it (pg_walinspect reads the primary's WAL)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    web = start_web(replica.url())
    replica.wait_for_replay()
    replica.pause()
    before = primary_position()

    answer = web.post("/api/v1/stores/berlin-01/stock/HOODIE/purchase/", {"quantity": 1})

    assert (answer.status, answer.served_by) == (200, "primary")
    token = answer.token
    assert primary_sql("SELECT pg_current_wal_lsn() >= %s::pg_lsn", [token]) == (True,)
    assert not replica.replayed(token)
    assert position(token) > position(before)
    (transaction_id,) = primary_sql(
        f"SELECT xmin::text FROM {Movement._meta.db_table} WHERE id = %s",
        [answer.body["movement_id"]],
    )
    # Commit records between the position before the write and the token (or the
    # flushed position, if that is earlier: pg_walinspect reads flushed WAL only).
    commits = primary_sql(
        "SELECT count(*) FROM pg_get_wal_records_info("
        "  %s::pg_lsn, least(%s::pg_lsn, pg_current_wal_flush_lsn()))"
        " WHERE resource_manager = 'Transaction' AND record_type LIKE 'COMMIT%%'"
        " AND xid = %s::xid",
        [before, token, transaction_id],
    )
    assert commits == (1,)

    # A read that wrote nothing carries none.
    assert web.get(MOVEMENTS).token is None
