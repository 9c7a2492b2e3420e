"""List reads with a read replica and without, served as deployed, side by side in one
run; and what the consistency token's check adds to a read.

    make bench-replicas     # or: .venv/bin/python bench/replica_bench.py (make bench runs it)

A scratch database on the local PostgreSQL, a streaming replica of it made as CI makes
one (``.ci/replica``, pg_basebackup -R, on BENCH_REPLICA_PORT), and two ``bin/run web``
servers on the same database and Redis: one without replicas, one with
``DATABASE_REPLICA_URLS`` naming the replica. wrk reads the same pages of the stock level
and movement lists from each, taking turns. The primary's transactions during a run
(``pg_stat_database``) per read, against the server without replicas, give its share of
the reads. Then the server with the replica is read with ``X-Consistency-Token``: a token the
replica has replayed, and one it has not (each such read asks the replica, then reads the
primary). Exits 1 when the server with the replica does not say ``X-Served-By: replica``
or a run answers anything but 200 (the figures would not measure what they claim).
"""

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import (
    ROOT,
    WRK_SCRIPT,
    checked,
    deployed_variables,
    drop_database,
    http_request,
    log,
    machine_load,
    median,
    pg_args,
    refuse_existing_database,
    require_tools,
    run_wrk,
    scratch_redis,
    sql_rows,
    start_web,
    web_variables,
)

from tests.processes import free_port, project_env, stop

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/inventory_bench_replicas"
)
REPLICA_PORT = int(os.environ.get("BENCH_REPLICA_PORT", "5434"))
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "")  # empty: a private redis-server
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
DURATION = float(os.environ.get("BENCH_DURATION", "5"))  # seconds per measured run
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
LEVELS = int(os.environ.get("BENCH_LEVELS", "2000"))
# pg_stat_database counts a backend's transactions when it reports them: at most once a
# second while busy, within 10 s once idle (PostgreSQL 15; a standby here had counted 3 of
# 400 after 1.5 s), and always as it exits. So after each run the servers' backends on the
# primary are ended (Django's health check reconnects them at the next request) and the
# counters read once they are gone: every transaction of the run counted in its own run.
SESSIONS_GONE_SECONDS = 30
STORE = "bench-replicas"
# A WAL position no replica of a fresh cluster has replayed: each read that sends it
# asks the replica how far it is, then is served by the primary.
AHEAD_TOKEN = "FFFF/0"


def replica_url() -> str:
    parts = DATABASE_URL.rsplit("/", 1)[0].rsplit(":", 1)[0]
    return f"{parts}:{REPLICA_PORT}/{pg_args(DATABASE_URL)[1]}"


# --- Data ------------------------------------------------------------------------------


def seed(levels: int) -> str:
    """One store with ``levels`` levels, each with its receipt (the ledger holds), and a
    clerk of the store with a token. Returns the token."""
    from django.utils import timezone

    from accounts.models import User
    from accounts.services import token_for_user
    from catalog.models import Product
    from stock.models import Movement, MovementKind, StockLevel
    from stores.models import Role
    from stores.services import membership_grant, store_create

    admin = User.objects.create_superuser("bench-admin")
    store = store_create(code=STORE, name="Bench replicas", actor=admin)
    clerk = User.objects.create_user("bench-clerk")
    membership_grant(store=store, user=clerk, role=Role.CLERK, actor=admin)
    products = Product.objects.bulk_create(
        Product(sku=f"REPLICA-{n:05d}", name=f"Replica bench {n}", price="1.00")
        for n in range(levels)
    )
    now = timezone.now()
    StockLevel.objects.bulk_create(
        StockLevel(store=store, product=product, on_hand=100, version=1, updated_at=now)
        for product in products
    )
    Movement.objects.bulk_create(
        Movement(store=store, product=product, kind=MovementKind.RECEIVE,
                 delta_on_hand=100, delta_reserved=0, on_hand_after=100, reserved_after=0,
                 version_after=1, reference="seed", created_at=now)
        for product in products
    )  # fmt: skip
    return token_for_user(user=clerk, actor=admin).key


def list_paths(levels: int) -> list[str]:
    """Pages of the stock level list (50 rows each) and of the movement list, each
    page a different read so the replica's buffers, not one row, are measured."""
    base = f"/api/v1/stores/{STORE}"
    pages = [f"{base}/stock/?page={page}" for page in range(1, levels // 50 + 1)]
    movements = [f"{base}/movements/?sku=REPLICA-{n:05d}" for n in range(0, levels, 50)]
    return [path for pair in zip(pages, movements, strict=False) for path in pair]


# --- Figures ---------------------------------------------------------------------------


def on_maintenance_database(url: str) -> str:
    """``url``'s server, database ``postgres``: the bench's own statistics queries are
    made there, so they count in no figure of the bench database."""
    return url.rsplit("/", 1)[0] + "/postgres"


def transactions(url: str) -> int:
    """Transactions the database at ``url`` has counted (on a replica: its own reads)."""
    rows = sql_rows(
        on_maintenance_database(url),
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
        (pg_args(url)[1],),
    )
    return int(rows[0][0])


def end_sessions(url: str) -> None:
    """End every session on the database at ``url`` and wait until none is left, so that
    each has reported its transactions. Ended again while any is found: a gunicorn worker
    still answering a request wrk sent before it stopped reconnects."""
    database, maintenance = pg_args(url)[1], on_maintenance_database(url)
    end = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s"
    deadline = time.monotonic() + SESSIONS_GONE_SECONDS
    while sql_rows(maintenance, end, (database,))[0][0]:
        if time.monotonic() > deadline:
            raise SystemExit(f"sessions on {url} did not end")
        time.sleep(0.2)
    time.sleep(0.3)  # the last one's exit, its counters reported, done


def measured(run, primary: str) -> dict:
    """``run()`` (a wrk run) with the transactions the primary served during it: its
    counters read before the run and after its sessions ended (``end_sessions``, which
    the caller ran before the first run too).

    Only the primary's: a standby ended its sessions no sooner than PostgreSQL's idle
    report (seen here: backends still listed 30 s after pg_terminate_backend), so its
    counters cannot be read per run; the primary's share of the reads is its
    transactions per read against the server without replicas, whose every read it
    serves."""
    before = transactions(primary)
    result = run()
    end_sessions(primary)
    result["primary_transactions"] = transactions(primary) - before
    result["primary_per_read"] = result["primary_transactions"] / result["requests"]
    return result


def check_served_by(port: int, token: str, path: str, expected: str | None, **headers) -> None:
    """``expected``: the ``X-Served-By`` the answer must carry (None: a server without
    replicas, which sends none)."""
    answer = http_request(port, "GET", path, token=token, headers=headers)
    served_by = answer.headers.get("x-served-by")
    if answer.status != 200 or served_by != expected:
        raise SystemExit(
            f"GET {path} on :{port} answered {answer.status}, X-Served-By {served_by!r}; "
            f"expected 200 and {expected!r}: the figures would not measure what they claim"
        )


def wait_for_replay(replica: str, timeout: float = 30) -> str:
    """The primary's WAL position, once the replica has replayed it."""
    (written,) = sql_rows(
        on_maintenance_database(DATABASE_URL), "SELECT pg_current_wal_lsn()::text"
    )[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (caught_up,) = sql_rows(
            on_maintenance_database(replica),
            "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
            (written,),
        )[0]
        if caught_up:
            return written
        time.sleep(0.1)
    raise SystemExit(f"the replica did not replay {written} within {timeout:.0f} s")


def replica_command(action: str) -> None:
    env = {**os.environ, "REPLICA_PORT": str(REPLICA_PORT)}
    checked([str(ROOT / ".ci" / "replica"), action], env, f".ci/replica {action}", timeout=300)


def main() -> int:
    require_tools("wrk", "createdb", "dropdb", "psql")
    refuse_existing_database(DATABASE_URL)
    work = Path(tempfile.mkdtemp(prefix="replica-bench-"))
    redis_server, redis_url, _ = scratch_redis(REDIS_URL, work)
    replica = replica_url()
    servers, created, replica_made = [], False, False
    try:
        variables = deployed_variables(
            database_url=DATABASE_URL, redis_url=redis_url,
            cache_prefix=f"bench-{uuid.uuid4().hex[:8]}", secret="replica-bench",
        )  # fmt: skip
        env = project_env(**variables)
        checked(["createdb", *pg_args(DATABASE_URL)[0], pg_args(DATABASE_URL)[1]], env, "createdb")
        created = True
        checked(["bin/run", "migrate"], env, "bin/run migrate", timeout=180)
        os.environ.update(variables)
        import django

        django.setup()
        token = seed(LEVELS)
        log(f"seeded 1 store with {LEVELS:,} levels; making a replica on :{REPLICA_PORT}")
        replica_command("start")
        replica_made = True
        wait_for_replay(replica)

        ports = {"off": free_port(), "on": free_port()}
        for name, port in ports.items():
            server_env = {**env, **web_variables(port, work)}
            if name == "on":
                server_env["DATABASE_REPLICA_URLS"] = replica
            servers.append(start_web(server_env, work / f"web-{name}.log"))
        paths = list_paths(LEVELS)
        check_served_by(ports["off"], token, paths[0], None)
        check_served_by(ports["on"], token, paths[0], "replica")
        check_served_by(ports["on"], token, paths[0], "primary", **{
            "X-Consistency-Token": AHEAD_TOKEN})  # fmt: skip

        script = work / "bench.lua"
        script.write_text(WRK_SCRIPT)

        def reads(server: str, header: str = ""):
            return lambda: run_wrk(
                f"http://127.0.0.1:{ports[server]}", script, paths=paths, seconds=DURATION,
                connections=CONNECTIONS, work=work, token=token, header=header,
            )  # fmt: skip

        log(f"machine load: {machine_load()}")
        for server in ports:  # warm both: caches, connections, the replica's buffers
            run_wrk(f"http://127.0.0.1:{ports[server]}", script, paths=paths, seconds=2,
                    connections=CONNECTIONS, work=work, token=token)  # fmt: skip
        end_sessions(DATABASE_URL)  # the warm-up's transactions counted before the runs
        scenarios = {"off": [], "on": [], "on-token": [], "on-token-ahead": []}
        for round_ in range(1, REPEATS + 1):
            replayed = wait_for_replay(replica)
            runs = {
                "off": reads("off"),
                "on": reads("on"),
                "on-token": reads("on", f"X-Consistency-Token: {replayed}"),
                "on-token-ahead": reads("on", f"X-Consistency-Token: {AHEAD_TOKEN}"),
            }
            for name, run in runs.items():
                result = measured(run, DATABASE_URL)
                if result["unexpected"] or result["socket_errors"]:
                    raise SystemExit(f"{name}: unexpected answers {result}")
                scenarios[name].append(result)
                log(f"round {round_} {name}: {result['rps']:.0f} reads/s, "
                    f"p50 {result['p50_us'] / 1000:.2f} ms, primary "
                    f"{result['primary_per_read']:.2f} transactions per read")  # fmt: skip
        report(scenarios)
        return 0
    finally:
        for server in servers:
            stop(server)
        if replica_made:
            replica_command("stop")
        if created:
            drop_database(DATABASE_URL)
        if redis_server is not None:
            redis_server.stop()


def report(scenarios: dict) -> None:
    def med(name, field):
        return median(run[field] for run in scenarios[name])

    print()
    print(f"List reads over HTTP, {REPEATS} rounds of {DURATION:.0f} s, wrk -c{CONNECTIONS}, "
          f"medians; machine load {machine_load()}")  # fmt: skip
    print(f"{'scenario':<44} {'reads/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'primary txn/read':>16} {'primary share':>13}")  # fmt: skip
    names = {
        "off": "no replica",
        "on": "replica, no token",
        "on-token": "replica, token it has replayed",
        "on-token-ahead": "replica, token ahead of it (primary serves)",
    }
    all_on_primary = med("off", "primary_per_read")
    for name, title in names.items():
        share = med(name, "primary_per_read") / all_on_primary
        print(f"{title:<44} {med(name, 'rps'):>8.0f} {med(name, 'p50_us') / 1000:>7.2f} "
              f"{med(name, 'p99_us') / 1000:>7.2f} {med(name, 'primary_per_read'):>16.2f} "
              f"{share:>13.1%}")  # fmt: skip
    print("primary share: the primary's transactions per read against the server without")
    print("replicas (every read on the primary); the rest went to the replica")
    base = med("on", "p50_us")
    print()
    print(f"replica on / off reads/s: {med('on', 'rps') / med('off', 'rps'):.2f}")
    replayed = (med("on-token", "p50_us") - base) / 1000
    ahead = (med("on-token-ahead", "p50_us") - base) / 1000
    print(f"token check, replayed token: p50 {replayed:+.2f} ms")
    print(f"token check, token ahead:    p50 {ahead:+.2f} ms (asks the replica, then the primary)")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.TimeoutExpired as error:
        raise SystemExit(f"timed out: {error}") from error
