"""docker-compose's ``replica`` service, without a Docker engine: its two scripts run here
as the postgres image runs them, on PostgreSQL clusters of the test's own.

``ops/postgres/replication.sh`` prepares a primary made as the image makes ``db``
(initdb, trust on the socket, scram-sha-256 over TCP); ``ops/postgres/replica.sh`` makes
the standby from it with ``pg_basebackup -R`` and starts it. The standby must stream, and
``/metrics`` of a real ``bin/run web`` must read its lag.
"""

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.metrics import by_label, parse
from tests.processes import ROOT, ProjectProcesses, free_port, http_get, project_env, wait_until

SERVER_BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
PASSWORD = "inventory"
REPLICATION_PASSWORD = "replication-" + uuid.uuid4().hex

# What runuser passes on to the scripts: PostgreSQL's and the compose file's variables.
PASSED = ("PATH", "PG", "POSTGRES_", "REPLICATION_", "PRIMARY_", "LANG", "LC_")

pytestmark = pytest.mark.skipif(
    not SERVER_BINARIES, reason="needs PostgreSQL's server programs (initdb, pg_ctl)"
)


class Cluster:
    """A PostgreSQL data directory and server of the test's own, run as the postgres
    user when the tests run as root (the server refuses to run as root)."""

    def __init__(self, directory: Path, port: int):
        self.directory, self.port = directory, port
        self.data = directory / f"data-{port}"
        self.bin = SERVER_BINARIES[-1].parent

    def as_postgres(self, args: list[str], env: dict[str, str]) -> tuple[list[str], dict]:
        """``args`` and the environment to run them with, PostgreSQL's programs first on
        PATH; as the postgres user when the tests run as root."""
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}", **env}
        if os.geteuid() == 0:
            passed = [f"{key}={value}" for key, value in env.items() if key.startswith(PASSED)]
            args = ["runuser", "-u", "postgres", "--", "env", *passed, *args]
        return args, env

    def command(self, args: list[str], env: dict[str, str] | None = None, **options):
        args, env = self.as_postgres(args, env or {})
        return subprocess.run(args, env=env, capture_output=True, text=True, **options)

    def psql(self, sql: str) -> str:
        result = self.command(
            ["psql", "-h", str(self.directory), "-p", str(self.port), "-U", "inventory"]
            + ["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.command(["pg_ctl", "-D", str(self.data), "stop", "-m", "immediate"])

    def server_options(self) -> list[str]:
        """Its port and socket directory; it listens on localhost over TCP too."""
        return ["-p", str(self.port), "-k", str(self.directory)]


@pytest.fixture
def directory():
    """Readable by the postgres user (pytest's tmp_path is root's own)."""
    path = Path(tempfile.mkdtemp(prefix="compose-replica-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def primary(directory):
    """``db`` as the postgres image makes it: initdb with trust on the socket, the
    superuser's password, and "host all all all scram-sha-256" appended to pg_hba."""
    cluster = Cluster(directory, free_port())
    (directory / "password").write_text(PASSWORD)
    initdb = cluster.command(
        ["initdb", "-D", str(cluster.data), "-U", "inventory", "--pwfile"]
        + [str(directory / "password"), "--auth-local=trust", "--auth-host=scram-sha-256"],
        timeout=120,
    )
    assert initdb.returncode == 0, initdb.stderr
    with open(cluster.data / "pg_hba.conf", "a") as hba:
        hba.write("host all all all scram-sha-256\n")
    started = cluster.command(
        ["pg_ctl", "-D", str(cluster.data), "-w", "-l", str(directory / "primary.log")]
        + ["-o", " ".join(cluster.server_options()), "start"],
        timeout=60,
    )
    assert started.returncode == 0, started.stderr
    try:
        yield cluster
    finally:
        cluster.stop()


def run_replication_script(primary: Cluster) -> subprocess.CompletedProcess:
    """As the image runs an init script: on the socket, with its environment."""
    return primary.command(
        ["bash", str(ROOT / "ops" / "postgres" / "replication.sh")],
        env={
            "PGHOST": str(primary.directory),
            "PGPORT": str(primary.port),
            "PGDATA": str(primary.data),
            "POSTGRES_USER": "inventory",
            "POSTGRES_DB": "postgres",
            "REPLICATION_PASSWORD": REPLICATION_PASSWORD,
        },
        timeout=60,
    )


@pytest.fixture
def standby(primary, directory):
    """``replica``: ops/postgres/replica.sh on an empty data directory, as compose starts
    it (PGDATA, PRIMARY_HOST, REPLICATION_USER, PGPASSWORD; arguments for postgres)."""
    assert run_replication_script(primary).returncode == 0
    cluster = Cluster(directory, free_port())
    cluster.data.mkdir()
    cluster.data.chmod(0o1777)  # as the image's volume: the postgres user's, mode 1777
    if os.geteuid() == 0:
        shutil.chown(cluster.data, "postgres", "postgres")
    env = {
        "PGDATA": str(cluster.data),
        "PRIMARY_HOST": "127.0.0.1",
        "PRIMARY_PORT": str(primary.port),
        "REPLICATION_USER": "replicator",
        "PGPASSWORD": REPLICATION_PASSWORD,
    }
    log = open(directory / "standby.log", "w")
    args, env = cluster.as_postgres(
        ["bash", str(ROOT / "ops" / "postgres" / "replica.sh"), *cluster.server_options()], env
    )
    process = subprocess.Popen(
        args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        ready = wait_until(
            lambda: (
                process.poll() is not None
                or cluster.command(
                    ["pg_isready", "-q", "-h", str(directory), "-p", str(cluster.port)]
                ).returncode
                == 0
            ),
            timeout=60,
        )
        assert ready and process.poll() is None, (directory / "standby.log").read_text()
        yield cluster
    finally:
        cluster.stop()
        process.wait(timeout=30)
        log.close()


def test_the_replication_script_makes_a_replication_only_role_and_can_run_again(primary):
    first, second = run_replication_script(primary), run_replication_script(primary)

    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert (
        primary.psql(
            "SELECT rolreplication, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole"
            " FROM pg_roles WHERE rolname = 'replicator'"
        )
        == "t|t|f|f|f"
    )
    hba = (primary.data / "pg_hba.conf").read_text().splitlines()
    assert hba.count("host replication replicator all scram-sha-256") == 1
    assert (
        primary.psql(
            "SELECT count(*) FROM pg_hba_file_rules WHERE 'replication' = ANY(database)"
            " AND 'replicator' = ANY(user_name) AND auth_method = 'scram-sha-256'"
        )
        == "1"
    )


def test_the_replica_streams_from_the_primary_and_serves_reads(primary, standby):
    primary.psql("CREATE TABLE arrivals (id int); INSERT INTO arrivals VALUES (1), (2)")

    assert standby.psql("SELECT pg_is_in_recovery()") == "t"
    assert primary.psql("SELECT usename, state FROM pg_stat_replication") == (
        "replicator|streaming"
    )
    assert wait_until(
        lambda: standby.psql("SELECT to_regclass('arrivals') IS NOT NULL") == "t", timeout=10
    )
    assert standby.psql("SELECT sum(id) FROM arrivals") == "3"


def test_the_webs_metrics_read_the_replicas_lag_while_replay_is_paused(primary, standby, directory):
    """The app's replica URL is what the compose file's DATABASE_REPLICA_URLS names:
    the standby over TCP with the primary's user and password."""
    database = f"postgres://inventory:{PASSWORD}@127.0.0.1:{{port}}/postgres"
    processes = ProjectProcesses(
        project_env(
            DATABASE_URL=database.format(port=primary.port),
            DATABASE_REPLICA_URLS=database.format(port=standby.port),
            DEBUG="false",
            SECRET_KEY="compose-replica-" + uuid.uuid4().hex * 2,
            ALLOWED_HOSTS="127.0.0.1",
            WEB_CONCURRENCY="1",
            PROMETHEUS_MULTIPROC_DIR=str(directory / "metrics"),
        ),
        directory,
    )

    def replica_gauges() -> tuple[dict, dict]:
        metrics = parse(http_get(port, "/metrics"))
        return (
            by_label(metrics, "inventory_replica_up", "replica"),
            by_label(metrics, "inventory_replica_lag_seconds", "replica"),
        )

    try:
        port = processes.start_web()
        primary.psql("CREATE TABLE arrivals (id int)")
        assert wait_until(
            lambda: replica_gauges() == ({"replica_1": 1}, {"replica_1": 0}), timeout=10
        )

        standby.psql("SELECT pg_wal_replay_pause()")
        primary.psql("INSERT INTO arrivals VALUES (1)")
        assert wait_until(lambda: replica_gauges()[1]["replica_1"] >= 1, timeout=15)
        behind = replica_gauges()

        standby.psql("SELECT pg_wal_replay_resume()")
        caught_up = wait_until(lambda: replica_gauges()[1] == {"replica_1": 0}, timeout=15)
    finally:
        processes.stop_all()

    assert behind[0] == {"replica_1": 1}
    assert 1 <= behind[1]["replica_1"] < 30
    assert caught_up
