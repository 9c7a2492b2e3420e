"""What must never touch a replica, counted on the replica itself: the reads that decide
a sale (purchase, reservation, commit, release, transfer, bulk job) and every read of a
request that wrote. The replica's ``pg_stat_database`` counts the sessions and
transactions the web process opened there."""

import pytest

from .endpoints import sale_deciding_writes
from .replica import wait

pytestmark = pytest.mark.postgresql("the replica is a PostgreSQL standby")

MOVEMENTS = "/api/v1/stores/berlin-01/movements/"


def settled(replica) -> tuple[int, int]:
    """The replica's counters once they stop moving (a backend reports as it exits)."""
    readings = [replica.activity()]
    wait(lambda: readings.append(replica.activity()) or readings[-1] == readings[-2], timeout=5)
    return readings[-1]


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


def test_every_write_answers_with_a_token_the_primary_has_reached(replica, start_web):
    web = start_web(replica.url())
    answer = web.post("/api/v1/stores/berlin-01/stock/HOODIE/purchase/", {"quantity": 1})
    assert (answer.status, answer.served_by) == (200, "primary")
    from .replica import primary_sql

    (reached,) = primary_sql("SELECT pg_current_wal_lsn() >= %s::pg_lsn", [answer.token])
    assert reached
    # A read that wrote nothing carries none.
    assert web.get(MOVEMENTS).token is None
