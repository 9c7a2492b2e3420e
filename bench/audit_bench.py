"""What auditing costs a purchase: ``stock_purchase`` throughput and latency with the
audit log on and off (AUDIT_ENABLED), measured in the same run, the two interleaved.

    .venv/bin/python bench/audit_bench.py

With auditing on, every purchase also inserts its audit outbox entry inside the guarded
UPDATE statement (``audit.services.movement_outbox_sql``), and after commit asks for a
relay (one Celery message per AUDIT_RELAY_SEND_INTERVAL_SECONDS and process); a worker
moves the entries into the hash-chained audit log.

- Buyers: BENCH_PROCESSES child processes per setting (processes, not threads: the GIL),
  started once with AUDIT_ENABLED=true and once with AUDIT_ENABLED=false and kept for the
  whole run. Each run, every child calls ``stock_purchase(quantity=1)`` in a loop for
  BENCH_DURATION seconds from a common start time (no HTTP: the service is the hot path).
- Scenarios: "hot", every child buys the same product in one store (one hot row, the
  flash sale), and "spread", each child buys its own product.
- Relay (BENCH_RELAY): "worker" (default) runs ``bin/run worker`` on the same database
  and broker during every run, so audit-on runs pay for the relay's share of the CPUs
  too, as on a one-machine deployment; "none" gives the buyers an in-memory broker and
  runs no relay, so only the purchase itself is measured (its statement and its
  after-commit relay send; the outbox grows during the run and is relayed in between).
- CPU: the user + system CPU time per purchase of the buyer processes, of the
  PostgreSQL backends serving the bench database (when PostgreSQL runs on this
  machine) and of the relay worker, read from /proc before and after each run. On a
  machine whose CPUs are the bottleneck these explain the throughput ratio.
- Rounds: BENCH_REPEATS rounds, each measuring both scenarios with audit on and off, the
  order alternating between rounds; the table shows the medians and the ratios of the
  medians. Between runs the outbox is relayed to empty and the relay messages left in
  the queue are deleted (each would only relay what is pending), so no run pays for the
  previous one.
- Check: every purchase is tagged with its run's reference; at the end each audited
  purchase must have exactly one audit row (outbox entry or relayed event), an unaudited
  one none, the purchases the children counted must be the sales committed, and the
  relayed events must still verify as a hash chain. The script exits 1 when a check
  fails.
- Data: a scratch database (BENCH_DATABASE_URL, default ``inventory_bench_audit``;
  created, migrated with ``bin/run migrate``, dropped at the end) with one store, one hot
  product and one product per child, each stocked with 10,000,000 units. Broker, result
  store and cache: a private ``redis-server`` on a free port, stopped at the end (or
  BENCH_REDIS_URL, an existing Redis database that must be empty; the keys the run made
  there are deleted at the end).

Needs: PostgreSQL on 127.0.0.1 (or BENCH_DATABASE_URL), ``createdb``/``dropdb``/``psql``,
``redis-server`` on PATH unless BENCH_REDIS_URL is set.
"""

import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import (  # noqa: E402
    checked,
    cpu_by_pid,
    cpu_used_since,
    database_backends,
    log,
    pg_args,
    refuse_existing_database,
    scratch_redis,
    session_pids,
)

from tests.processes import project_env, stop, wait_until  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/inventory_bench_audit"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "")  # empty: a private redis-server
RESULT_FILE = os.environ.get("BENCH_RESULT_FILE", "")  # the ratios as JSON, if set
RELAY = os.environ.get("BENCH_RELAY", "worker")
PROCESSES = int(os.environ.get("BENCH_PROCESSES", "4"))
DURATION = float(os.environ.get("BENCH_DURATION", "5"))  # seconds per measured run
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
WARMUP = 1.0  # seconds per scenario and setting, before the measured rounds
STOCK = 10_000_000  # units per product: far more than any run sells
STORE = "bench-audit"
CLERK = "bench-audit-clerk"
HOT_SKU = "BENCH-AUDIT-HOT"
SCENARIOS = ("hot", "spread")
QUEUE = "celery"  # Celery's default queue: a Redis list of that name
RESULT = "BENCH-RESULT "


def spread_sku(index: int) -> str:
    return f"BENCH-AUDIT-{index:03d}"


def skus_of(scenario: str) -> list[str]:
    if scenario == "hot":
        return [HOT_SKU] * PROCESSES
    return [spread_sku(i) for i in range(PROCESSES)]


def reference_of(scenario: str, audit: bool, round_: str) -> str:
    return f"bench:{scenario}:{'on' if audit else 'off'}:{round_}"


# --- Child: one buyer process ---------------------------------------------------------


def child_main() -> None:
    """Read one JSON command per line on stdin, answer one RESULT line on stdout."""
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed goes to the log, not into the protocol
    import django

    django.setup()
    from accounts.models import User
    from catalog.models import Product
    from stock.services import stock_purchase
    from stores.models import Store

    store = Store.objects.get(code=STORE)
    actor = User.objects.get(username=CLERK)
    products = {product.sku: product for product in Product.objects.all()}
    protocol.write("READY\n")
    protocol.flush()
    for line in sys.stdin:
        command = json.loads(line)
        product, reference = products[command["sku"]], command["reference"]
        latencies, errors, first_error = [], 0, ""
        time.sleep(max(0.0, command["start_at"] - time.time()))
        began = now = time.perf_counter()
        deadline = began + command["duration"]
        while now < deadline:
            try:
                stock_purchase(
                    store=store, product=product, quantity=1, reference=reference, actor=actor
                )
            except Exception as error:  # noqa: BLE001 - counted and reported
                errors += 1
                first_error = first_error or repr(error)
                ok = False
            else:
                ok = True
            done = time.perf_counter()
            if ok:
                latencies.append(round((done - now) * 1e6))
            now = done
        result = {
            "purchases": len(latencies),
            "errors": errors,
            "first_error": first_error,
            "elapsed": now - began,
            "latencies_us": latencies,
        }
        protocol.write(RESULT + json.dumps(result) + "\n")
        protocol.flush()


class Buyers:
    """PROCESSES child processes with one AUDIT_ENABLED setting, kept for the whole run."""

    def __init__(self, audit: bool, env: dict, work: Path):
        self.audit = audit
        self.log_path = work / f"buyers-audit-{'on' if audit else 'off'}.log"
        self.log_file = open(self.log_path, "w")
        self.processes = [
            subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--child"],
                cwd=ROOT,
                env={**env, "AUDIT_ENABLED": "true" if audit else "false"},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.log_file,
                text=True,
            )
            for _ in range(PROCESSES)
        ]

    def _line(self, process: subprocess.Popen, timeout: float) -> str:
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        line = process.stdout.readline() if ready else ""
        if not line:
            self.log_file.flush()
            raise SystemExit(
                f"a buyer (audit {'on' if self.audit else 'off'}) did not answer:\n"
                + self.log_path.read_text()[-3000:]
            )
        return line

    def wait_ready(self) -> None:
        for process in self.processes:
            if self._line(process, timeout=60).strip() != "READY":
                raise SystemExit(f"unexpected answer from a buyer; see {self.log_path}")

    def run(self, scenario: str, reference: str, duration: float) -> dict:
        start_at = time.time() + 0.3
        for process, sku in zip(self.processes, skus_of(scenario), strict=True):
            command = {"sku": sku, "reference": reference, "start_at": start_at}
            process.stdin.write(json.dumps(command | {"duration": duration}) + "\n")
            process.stdin.flush()
        answers = []
        for process in self.processes:
            line = self._line(process, timeout=duration + 60)
            answers.append(json.loads(line.removeprefix(RESULT)))
        latencies = sorted(us for answer in answers for us in answer["latencies_us"])
        return {
            "purchases": sum(answer["purchases"] for answer in answers),
            "rate": sum(answer["purchases"] / answer["elapsed"] for answer in answers),
            "p50_ms": percentile(latencies, 50) / 1000,
            "errors": sum(answer["errors"] for answer in answers),
            "first_error": next((a["first_error"] for a in answers if a["first_error"]), ""),
        }

    def close(self) -> None:
        for process in self.processes:
            if process.stdin and not process.stdin.closed:
                try:
                    process.stdin.close()
                except OSError:
                    pass
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.log_file.close()


def percentile(values: list, pct: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * pct / 100))]


# --- Parent ---------------------------------------------------------------------------


def seed() -> None:
    """One store, a clerk (the purchases' actor), the products with STOCK units each."""
    from accounts.models import User
    from audit.services import audit_relay_pending
    from catalog.models import Product
    from stock.services import MAX_QUANTITY, stock_receive
    from stores.models import Store

    store = Store.objects.create(code=STORE, name="Audit bench")
    User.objects.create_user(CLERK)
    skus = [HOT_SKU] + [spread_sku(i) for i in range(PROCESSES)]
    products = Product.objects.bulk_create(
        Product(sku=sku, name=f"Audit bench {sku}", price="1.00") for sku in skus
    )
    for product in products:
        for _ in range(STOCK // MAX_QUANTITY):
            stock_receive(store=store, product=product, quantity=MAX_QUANTITY, reference="seed")
    audit_relay_pending()


def main() -> int:
    started = time.monotonic()
    if RELAY not in ("worker", "none"):
        raise SystemExit(f"BENCH_RELAY must be worker or none, not {RELAY!r}")
    for tool in ("createdb", "dropdb", "psql"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH")
    refuse_existing_database(DATABASE_URL)
    pg, database = pg_args(DATABASE_URL)

    work = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    prefix = f"bench-audit-{uuid.uuid4().hex[:8]}"
    redis_server, redis_url, redis_client = scratch_redis(REDIS_URL, work)

    variables = dict(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=redis_url,
        CACHE_KEY_PREFIX=prefix,
        DEBUG="false",  # with DEBUG on, Django keeps every query in memory
        SECRET_KEY="audit-bench-" + "x" * 50,
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="inventory_site.settings",
        AUDIT_ENABLED="true",
    )
    env = project_env(**variables)
    buyer_env = dict(env)
    if RELAY == "none":  # relay messages go to a broker in the buyer's own memory
        buyer_env |= {"CELERY_BROKER_URL": "memory://", "CELERY_TASK_ALWAYS_EAGER": "false"}
    worker, worker_log, pools, created = None, None, {}, False
    failed, checks_ok = True, False
    try:
        checked(["createdb", *pg, database], env, "createdb")
        created = True
        log(f"created database {database}; migrating")
        checked(["bin/run", "migrate"], env, "bin/run migrate", timeout=180)

        os.environ.update(variables)  # this process works on the same database
        import django

        django.setup()
        seed()
        log(f"seeded 1 store, {PROCESSES + 1} products with {STOCK:,} units each")

        if RELAY == "worker":
            worker_log = open(work / "worker.log", "w+")
            worker = subprocess.Popen(
                ["bin/run", "worker"], cwd=ROOT, env=env, stdout=worker_log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            if (
                not wait_until(
                    lambda: (
                        worker.poll() is not None
                        or subprocess.run(
                            ["bin/run", "ping-worker"], cwd=ROOT, env=env, capture_output=True
                        ).returncode
                        == 0
                    ),
                    timeout=60,
                    interval=0.5,
                )
                or worker.poll() is not None
            ):
                worker_log.seek(0)
                raise SystemExit(f"bin/run worker did not start:\n{worker_log.read()[-3000:]}")
            log("bin/run worker answers (the relay)")

        for audit in (True, False):
            pools[audit] = Buyers(audit, buyer_env, work)
        for pool in pools.values():
            pool.wait_ready()
        log(f"{PROCESSES} buyer processes with audit on, {PROCESSES} with audit off")

        def cpu_groups() -> dict:
            return {
                "buyers": [process.pid for pool in pools.values() for process in pool.processes],
                "db": database_backends(),
                "relay": session_pids(worker.pid) if worker is not None else [],
            }

        def measure(scenario: str, audit: bool, round_: str, duration: float) -> dict:
            events_before = relayed_events()
            groups = cpu_groups()
            cpu_before = {name: cpu_by_pid(pids) for name, pids in groups.items()}
            result = pools[audit].run(scenario, reference_of(scenario, audit, round_), duration)
            groups = {name: set(pids) | set(cpu_groups()[name]) for name, pids in groups.items()}
            for name, pids in groups.items():
                used = cpu_used_since(cpu_before[name], pids)
                result[f"cpu_{name}"] = 1000 * used / max(result["purchases"], 1)
            result["relayed"] = relayed_events() - events_before
            result["backlog"] = outbox_entries()
            result["queued"] = redis_client.llen(QUEUE) if RELAY == "worker" else None
            settle(redis_client)
            return result

        for scenario in SCENARIOS:
            for audit in (True, False):
                measure(scenario, audit, "warmup", WARMUP)
        log("warm-up done")
        results = {(scenario, audit): [] for scenario in SCENARIOS for audit in (True, False)}
        for round_ in range(REPEATS):
            order = SCENARIOS if round_ % 2 == 0 else SCENARIOS[::-1]
            for index, scenario in enumerate(order):
                first = (round_ + index) % 2 == 0
                for audit in (first, not first):
                    run = measure(scenario, audit, str(round_), DURATION)
                    results[scenario, audit].append(run | {"round": round_})
            log(f"round {round_ + 1}/{REPEATS} done")

        for pool in pools.values():
            pool.close()
        pools = {}
        print_report(results, time.monotonic() - started)
        checks_ok = check_audit_rows(results)
        if RESULT_FILE:  # for bench/http_bench.py, which prints this figure with its own
            Path(RESULT_FILE).write_text(json.dumps({
                "relay": RELAY,
                "checks_ok": checks_ok,
                "ratios": {
                    scenario: statistics.median(r["rate"] for r in results[scenario, True])
                    / statistics.median(r["rate"] for r in results[scenario, False])
                    for scenario in SCENARIOS
                },
            }))  # fmt: skip
        if not checks_ok:
            print("CHECK FAILED: the figures above do not measure what they claim")
        failed = not checks_ok
    finally:
        for pool in pools.values():
            pool.close()
        if worker is not None:
            stop(worker)
        if worker_log is not None:
            if failed:
                worker_log.seek(0)
                print(f"worker log (tail):\n{worker_log.read()[-2000:]}")
            worker_log.close()
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if created:
            subprocess.run(["dropdb", *pg, "--force", "--if-exists", database], check=False)
        if redis_server is not None:
            redis_server.stop()
        else:
            delete_keys(redis_client, prefix)
        shutil.rmtree(work, ignore_errors=True)
        log(f"dropped {database}, cleaned up Redis (total {time.monotonic() - started:.0f}s)")
    return 0 if checks_ok else 1


def relayed_events() -> int:
    from audit.models import AuditChainHead

    head = AuditChainHead.objects.filter(pk=1).values_list("sequence", flat=True).first()
    return head or 0


def outbox_entries() -> int:
    from audit.models import AuditOutboxEntry

    return AuditOutboxEntry.objects.count()


def settle(redis_client) -> None:
    """Leave nothing of the last run for the next one: delete the relay messages still
    queued (each would only relay whatever is pending), relay the outbox to empty here,
    and wait until the worker holds no message."""
    from audit.services import audit_relay_pending

    if RELAY == "worker":
        redis_client.delete(QUEUE)
    audit_relay_pending()
    if RELAY == "worker" and not wait_until(
        lambda: redis_client.hlen("unacked") == 0 and redis_client.llen(QUEUE) == 0,
        timeout=30,
        interval=0.05,
    ):
        raise SystemExit("the worker did not go idle within 30 s")
    if outbox_entries():
        raise SystemExit("the outbox did not empty between runs")


def delete_keys(redis_client, prefix: str) -> None:
    """In a shared Redis database (empty when the run began): the cache keys, Celery's
    queue and bookkeeping keys and task results this run made."""
    import redis

    try:
        for pattern in (f"{prefix}:*", f"{QUEUE}*", "_kombu.*", "unacked*"):
            keys = list(redis_client.scan_iter(match=pattern, count=1000))
            for start in range(0, len(keys), 1000):
                redis_client.delete(*keys[start : start + 1000])
    except redis.RedisError as error:
        print(f"could not delete the bench's Redis keys: {error!r}")


def check_audit_rows(results: dict) -> bool:
    """Every audited purchase has exactly one audit row, an unaudited one none, the
    purchases the buyers counted are the sales that committed, and the relayed events
    still form an unbroken hash chain."""
    from django.db import connection

    from audit.models import AuditEvent, AuditOutboxEntry
    from audit.selectors import audit_chain_break
    from audit.services import MOVEMENT
    from stock.models import Movement, MovementKind

    outbox, events = AuditOutboxEntry._meta.db_table, AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH audit_rows AS (
                SELECT object_id, 0 AS relayed FROM {outbox} WHERE object_type = %(type)s
                UNION ALL
                SELECT object_id, 1 FROM {events} WHERE object_type = %(type)s
            ), per_object AS (
                SELECT object_id, count(*) AS n, sum(relayed) AS relayed
                  FROM audit_rows GROUP BY object_id
            )
            SELECT split_part(m.reference, ':', 3), count(*),
                   count(*) FILTER (WHERE a.n = 1), coalesce(sum(a.n), 0),
                   coalesce(sum(a.relayed), 0)
              FROM {Movement._meta.db_table} m
              LEFT JOIN per_object a ON a.object_id = m.id::text
             WHERE m.kind = %(sale)s AND m.reference LIKE 'bench:%%'
             GROUP BY 1
            """,
            {"type": MOVEMENT, "sale": MovementKind.SALE.value},
        )
        found = {row[0]: row[1:] for row in cursor.fetchall()}
        cursor.execute(
            f"""
            SELECT count(*) FROM (
                SELECT object_id FROM {outbox} WHERE action = %(action)s
                UNION ALL SELECT object_id FROM {events} WHERE action = %(action)s
            ) a
            WHERE NOT EXISTS (
                SELECT 1 FROM {Movement._meta.db_table} m
                 WHERE m.id::text = a.object_id AND m.kind = %(sale)s
            )
            """,
            {"action": f"stock.{MovementKind.SALE.value}", "sale": MovementKind.SALE.value},
        )
        orphans = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT count(*) FROM {Movement._meta.db_table} "
            "WHERE kind = %s AND reference LIKE 'bench:%%' AND reference NOT LIKE '%%:warmup'",
            [MovementKind.SALE.value],
        )
        measured_sales = cursor.fetchone()[0]
    chain_break = audit_chain_break()
    counted = sum(run["purchases"] for runs in results.values() for run in runs)
    errors = sum(run["errors"] for runs in results.values() for run in runs)

    on = found.get("on", (0, 0, 0, 0))
    off = found.get("off", (0, 0, 0, 0))
    on_ok = on[0] > 0 and on[1] == on[0] and on[2] == on[0]
    off_ok = off[0] > 0 and off[2] == 0
    counted_ok = counted == measured_sales and errors == 0
    print()
    print(
        f"check, audit on:  {on[0]} purchases, {on[2]} audit rows ({on[3]} relayed events + "
        f"{on[2] - on[3]} in the outbox), {on[1]} purchases with exactly one: "
        + ("OK" if on_ok else "FAILED")
    )
    print(
        f"check, audit off: {off[0]} purchases, {off[2]} audit rows: "
        + ("OK" if off_ok else "FAILED")
    )
    print(
        f"check, purchases counted by the buyers {counted} = sales committed in the measured "
        f"runs {measured_sales}, {errors} errors: " + ("OK" if counted_ok else "FAILED")
    )
    print(
        f"check, audit rows of sales naming no sale: {orphans}: "
        + ("OK" if not orphans else "FAILED")
    )
    print(
        f"check, hash chain of the {relayed_events()} relayed events: "
        + ("OK" if chain_break is None else f"FAILED ({chain_break})")
    )
    if errors:
        first = next(r["first_error"] for runs in results.values() for r in runs if r["errors"])
        print(f"first error: {first}")
    return on_ok and off_ok and counted_ok and not orphans and chain_break is None


def database_conditions() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_version'), current_setting('synchronous_commit'), "
            "current_setting('fsync'), current_setting('wal_sync_method')"
        )
        version, synchronous_commit, fsync, sync_method = cursor.fetchone()
    return (
        f"PostgreSQL {version}, synchronous_commit={synchronous_commit}, fsync={fsync}, "
        f"wal_sync_method={sync_method}"
    )


def print_report(results: dict, elapsed: float) -> None:
    def median(scenario, audit, field):
        return statistics.median(run[field] for run in results[scenario, audit])

    print()
    print(
        f"stock_purchase(quantity=1), {PROCESSES} buyer processes, {DURATION:g}s per run, "
        f"median of {REPEATS} rounds, audit on/off interleaved"
    )
    local_db = urlparse(DATABASE_URL).hostname in ("127.0.0.1", "localhost", "::1")
    print(f"{'':<32}CPU ms per purchase")
    print(f"{'scenario':<9}{'audit':<6}{'purch/s':>9}{'p50 ms':>8}  {'buyers':>7}"
          f"{'db' if local_db else '':>6}{'relay' if RELAY == 'worker' else '':>7}"
          "   purchases/s per run")  # fmt: skip
    for (scenario, audit), runs in results.items():
        per_run = " ".join(f"{run['rate']:.0f}" for run in runs)
        cpu_db = f"{median(scenario, audit, 'cpu_db'):>6.2f}" if local_db else f"{'':>6}"
        cpu_relay = f"{median(scenario, audit, 'cpu_relay'):>7.2f}" if RELAY == "worker" else ""
        print(
            f"{scenario:<9}{'on' if audit else 'off':<6}{median(scenario, audit, 'rate'):>9.0f}"
            f"{median(scenario, audit, 'p50_ms'):>8.2f}  "
            f"{median(scenario, audit, 'cpu_buyers'):>7.2f}{cpu_db}{cpu_relay:<7}   {per_run}"
        )
    if RELAY == "worker":
        print()
        for scenario in SCENARIOS:
            print(
                f"relay during {scenario} audit-on runs (medians): "
                f"{median(scenario, True, 'relayed'):.0f} events relayed of "
                f"{median(scenario, True, 'purchases'):.0f} purchases; at the end "
                f"{median(scenario, True, 'backlog'):.0f} in the outbox and "
                f"{median(scenario, True, 'queued'):.0f} relay messages still queued"
            )
    print()
    for scenario in SCENARIOS:
        by_round = {
            run["round"]: run["rate"] for run in results[scenario, False]
        }  # rounds measure both settings back to back
        per_round = " ".join(
            f"{run['rate'] / by_round[run['round']]:.2f}" for run in results[scenario, True]
        )
        print(
            f"{scenario:<7} audit on / off = "
            f"{median(scenario, True, 'rate') / median(scenario, False, 'rate'):.2f} purchases/s"
            f" (per round: {per_round}); p50 latency on / off = "
            f"{median(scenario, True, 'p50_ms') / median(scenario, False, 'p50_ms'):.2f}"
        )
    print()
    relay = (
        "bin/run worker (CELERY_CONCURRENCY 2) relaying during every run, on the same CPUs"
        if RELAY == "worker"
        else "none during the runs (in-memory broker; outbox relayed between runs)"
    )
    print(f"relay: {relay}")
    print(f"database: {database_conditions()}")
    print(
        f"conditions: {PROCESSES} processes, {DURATION:g}s x {REPEATS} rounds per setting; "
        f"{os.cpu_count()} CPUs shared with PostgreSQL, Redis, the relay and whatever else "
        f"runs (load average {os.getloadavg()[0]:.1f} at the end): compare the ratios, "
        f"not the absolute figures; the run took {elapsed:.0f}s"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        child_main()
    else:
        # A SIGTERM stops the run as Ctrl-C does: the cleanup (database, processes) runs.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
        sys.exit(main())
