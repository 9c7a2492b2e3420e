"""A streaming replica of the test database's PostgreSQL, as the replica tests use it:
named by ``TEST_REPLICA_URL`` (``.ci/replica start`` makes one on 127.0.0.1:5433).

The test database, created on the primary by pytest, reaches the replica as every other
change does: by WAL replay. The tests read the replica's own counters and pause its
replay through a connection of their own to its ``postgres`` database, so that they
never count themselves."""

import os
import shutil
import subprocess
from urllib.parse import quote, urlsplit

import psycopg2
import pytest
from django.db import connection

from inventory_site.replicas.status import LAG_EXPRESSION
from tests.app_role import as_owner
from tests.processes import wait_until

REPLICA_URL = os.environ.get("TEST_REPLICA_URL", "")
REQUIRE_REPLICA = os.environ.get("REQUIRE_REPLICA", "").lower() in {"1", "true", "yes"}
MISSING_REASON = (
    "needs a streaming replica of the test database's PostgreSQL server: set "
    "TEST_REPLICA_URL (`.ci/replica start` makes one on 127.0.0.1:5433); "
    "REQUIRE_REPLICA=1 fails instead of skipping"
)


def require_replica() -> None:
    """Skip (or, with REQUIRE_REPLICA, fail) the calling test when no replica is named."""
    if REPLICA_URL and connection.vendor == "postgresql":
        return
    reason = MISSING_REASON if REPLICA_URL == "" else "the replica tests need PostgreSQL"
    if REQUIRE_REPLICA:
        pytest.fail(f"REQUIRE_REPLICA is set, but the run {reason}", pytrace=False)
    pytest.skip(reason)


def primary_sql(query: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()


def primary_position() -> str:
    (written,) = primary_sql("SELECT pg_current_wal_lsn()::text")
    return written


class Replica:
    def __init__(self, url: str, database: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 5432
        self.user, self.password = parts.username or "postgres", parts.password or ""
        self.database = database
        self._admin = None

    def url(self) -> str:
        """DATABASE_REPLICA_URLS for a web process: the test database on the replica."""
        user, password = quote(self.user, safe=""), quote(self.password, safe="")
        return f"postgres://{user}:{password}@{self.host}:{self.port}/{self.database}"

    def sql(self, query: str, params=()):
        """One statement on the replica's ``postgres`` database; its first row (None
        for a statement that returns none)."""
        if self._admin is None or self._admin.closed:
            self._admin = psycopg2.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                dbname="postgres",
                connect_timeout=3,
            )
            self._admin.autocommit = True
        with self._admin.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchone() if cursor.description else None

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def check(self) -> None:
        """A replica of this primary that has the test database, or fail saying so."""
        (in_recovery,) = self.sql("SELECT pg_is_in_recovery()")
        assert in_recovery, f"{self.host}:{self.port} is no standby (not in recovery)"
        self.wait_for_replay()
        (exists,) = self.sql("SELECT count(*) FROM pg_database WHERE datname = %s", [self.database])
        assert exists == 1, f"the replica has no database {self.database}"

    def pause(self) -> None:
        self.sql("SELECT pg_wal_replay_pause()")
        # Paused once the replay loop sees the request (PostgreSQL 14+ tells).
        assert wait(lambda: self.sql("SELECT pg_get_wal_replay_pause_state()")[0] == "paused")

    def resume(self) -> None:
        self.sql("SELECT pg_wal_replay_resume()")

    def lag(self) -> float:
        """The replica's lag as the router and /metrics read it (``LAG_EXPRESSION``)."""
        (seconds,) = self.sql(f"SELECT {LAG_EXPRESSION}")
        return float(seconds)

    def stop_streaming(self):
        """Cut the replica off from its primary, as a network or a primary that stops
        answering does: its ``primary_conninfo`` emptied, its WAL receiver stops. Returns
        what connects it again (the conninfo as it was)."""
        (conninfo,) = self.sql("SHOW primary_conninfo")
        self.sql("ALTER SYSTEM SET primary_conninfo = ''")
        self.sql("SELECT pg_reload_conf()")
        assert wait(lambda: self.sql("SELECT count(*) FROM pg_stat_wal_receiver")[0] == 0)

        def stream_again() -> None:
            self.sql("ALTER SYSTEM SET primary_conninfo = %s", [conninfo])
            self.sql("SELECT pg_reload_conf()")
            streaming = "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'"
            assert wait(lambda: self.sql(streaming)[0] == 1), "the replica did not stream again"

        return stream_again

    def replayed(self, position: str) -> bool:
        (done,) = self.sql("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [position])
        return bool(done)

    def wait_for_replay(self, position: str | None = None, timeout: float = 30) -> None:
        """Until the replica has replayed ``position`` (default: the primary's now)."""
        position = position or primary_position()
        assert wait(lambda: self.replayed(position), timeout=timeout), (
            f"the replica did not replay {position} in {timeout} s"
        )

    def activity(self) -> tuple[int, int]:
        """(sessions, transactions) the replica has counted on the test database. A
        backend counts its session as it starts and its transactions as it exits (or
        each second); the web processes of these tests keep no connection
        (CONN_MAX_AGE=0), so every request's are in soon after it."""
        self.sql("SELECT pg_stat_clear_snapshot()")
        sessions, transactions = self.sql(
            "SELECT sessions, xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            [self.database],
        )
        return sessions, transactions

    def sessions_open(self) -> int:
        """Sessions on the test database the replica has now."""
        (count,) = self.sql(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = %s AND backend_type = 'client backend'",
            [self.database],
        )
        return count

    # --- Stopping and starting the replica's server ----------------------------------

    def stop_server(self):
        """Stop the replica's server (pg_ctl, as postgres); returns what starts it again,
        which returns once the replica answers.

        A standby that starts replays the WAL from its last restartpoint before it takes
        a connection, and pg_ctl does not wait for that. So a restartpoint is made first
        (a checkpoint on the primary, replayed, then one on the replica): without it, the
        WAL of another test worker's bulk imports made the replica refuse connections
        for 18 s after its start."""
        with as_owner(), connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
        self.wait_for_replay()
        self.sql("CHECKPOINT")
        (directory,) = self.sql("SHOW data_directory")
        (version,) = self.sql("SHOW server_version_num")
        pg_ctl = [f"/usr/lib/postgresql/{int(version) // 10000}/bin/pg_ctl", "-D", directory]
        if os.geteuid() == 0:
            pg_ctl = [shutil.which("runuser"), "-u", "postgres", "--", *pg_ctl]
        self.close()
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], check=True, timeout=60)
        log = f"{directory}/server.log"

        def start_again() -> None:
            subprocess.run([*pg_ctl, "-l", log, "-w", "-t", "60", "start"], check=True, timeout=90)
            assert wait(self.answers, timeout=90), "the replica did not answer after its start"

        return start_again

    def answers(self) -> bool:
        try:
            self.sql("SELECT 1")
        except psycopg2.OperationalError:
            self.close()
            return False
        return True

    def server_processes(self) -> list[int]:
        """The replica's postmaster and the backends of sessions on the test database:
        what to stop (SIGSTOP) to make it stop answering, connections and all."""
        (pid_file,) = self.sql("SELECT pg_read_file('postmaster.pid')")
        backends = self.sql(
            "SELECT array_agg(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND backend_type = 'client backend'",
            [self.database],
        )[0]
        return [int(pid_file.split()[0]), *(backends or [])]


def may_stop_the_replica() -> bool:
    """The tests stop and start the replica's server with pg_ctl as postgres: they run
    as root (CI) or as postgres, on the replica's machine."""
    try:
        user = os.getlogin()
    except OSError:
        user = ""
    return os.geteuid() == 0 or user == "postgres"


def wait(check, *, timeout: float = 30) -> bool:
    """``tests.processes.wait_until``, polled often: replay and activity change fast."""
    return wait_until(check, timeout=timeout, interval=0.05)
