"""How far a replica is behind the primary, read on the replica itself."""

from django.db import connections

# Zero when the replica streams from the primary and has replayed everything it
# received; otherwise the age of the last transaction it replayed. (A primary that has
# written nothing for a while leaves an idle replica's last replayed transaction old: that
# replica is not behind.) A replica whose WAL receiver does not stream (the primary is
# unreachable, or its connection was cut) replays what it got and then receives nothing:
# it cannot tell how far behind it is, so its lag is the age of the last message it had
# from the primary, or of its last replayed transaction once the receiver is gone, and
# grows until it streams again. A role without pg_read_all_stats (pg_monitor) sees the
# receiver's pid but not its status: there, a receiver that exists counts as streaming.
LAG_EXPRESSION = """CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN NOT EXISTS (
        SELECT FROM pg_stat_wal_receiver
        WHERE pid IS NOT NULL AND (status = 'streaming' OR status IS NULL)
    ) THEN COALESCE(
        EXTRACT(EPOCH FROM now() - (SELECT max(last_msg_receipt_time) FROM pg_stat_wal_receiver)),
        EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()),
        'Infinity'
    )
    WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
    ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
END"""

# Where the replica's data stands in the primary's WAL: as far as it has replayed. A
# server that is not in recovery (a test's mirror of the primary) stands where it writes.
REPLAYED_EXPRESSION = """CASE
    WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
    ELSE pg_current_wal_lsn()
END::text"""
STATUS_SQL = f"SELECT {LAG_EXPRESSION}, {REPLAYED_EXPRESSION}"


def replica_status(alias: str) -> tuple[float, str | None]:
    """(seconds behind, as ``LAG_EXPRESSION`` counts them; the WAL position replayed, as
    PostgreSQL writes it, None before the first replay) in one round trip. Raises the
    driver's error when the replica cannot be reached; callers decide what a down
    replica means to them."""
    with connections[alias].cursor() as cursor:
        cursor.execute(STATUS_SQL)
        lag, replayed = cursor.fetchone()
    return float(lag), replayed
