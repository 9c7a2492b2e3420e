"""The request path over HTTP, served as deployed: ``/healthz``, stock reads from the
cache and from the database, purchases on one hot SKU, a sold-out purchase, and the
guarded UPDATE alone with pgbench; figures next to the targets of issue 12.

    make bench          # or: .venv/bin/python bench/http_bench.py

See bench/README.md for what each scenario measures and the variables that change it.
Exits 1 when the ledger shows an oversold or inconsistent level, or a scenario answered
something it should not have (the figures would not measure what they claim).
"""

import json
import os
import re
import signal
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
    cpu_by_pid,
    cpu_used_since,
    database_backends,
    deployed_variables,
    drop_database,
    log,
    machine_busy_seconds,
    median,
    pg_args,
    refuse_existing_database,
    require_tools,
    run_wrk,
    scratch_redis,
    session_pids,
    start_web,
    start_worker,
    verdict,
    web_variables,
)

from tests.processes import free_port, project_env, stop

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/inventory_bench_http"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "")  # empty: a private redis-server
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
DURATION = float(os.environ.get("BENCH_DURATION", "5"))  # seconds per measured run
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
WARMUP = 1.0
MISS_LEVELS = int(os.environ.get("BENCH_MISS_LEVELS", "8000"))
PGBENCH_CLIENTS = int(os.environ.get("BENCH_PGBENCH_CLIENTS", "8"))
# Extra `bin/run web` arguments (gunicorn's), e.g. "--threads 4": empty measures the defaults.
WEB_ARGS = os.environ.get("BENCH_WEB_ARGS", "").split()
AUDIT = os.environ.get("BENCH_AUDIT", "1") != "0"  # run bench/audit_bench.py after
HOT_LEVELS = 4
STORE = "bench-01"
UNITS = 1_000_000  # on the hot SKU and on pgbench's row: more than any run sells

SKU_HIT = "BENCH-HIT-{:02d}"
SKU_MISS = "BENCH-MISS-{:05d}"
SKU_SALE = "BENCH-SALE"
SKU_SOLD_OUT = "BENCH-SOLD-OUT"
SKU_PGBENCH = "BENCH-PGBENCH"

TARGETS = {
    "hit": "rps >= 0.5 x /healthz, p99 < 10 ms",
    "purchase": "rps >= 0.25 x /healthz",
    "purchase-key": "rps >= 0.9 x purchase",
    "sold-out": "rps >= 0.8 x cache-hit GET",
    "audit": "audit on / off >= 0.85",
}


def level_path(sku: str) -> str:
    return f"/api/v1/stores/{STORE}/stock/{sku}/"


# --- Data --------------------------------------------------------------------------------


def seed(miss_levels: int) -> dict:
    """One store; a clerk (member) and a staff user with view permission, each with a
    token; levels for hits and misses, a hot SKU, a sold-out level and pgbench's row.
    Read levels are inserted in bulk with their one receipt each (the ledger holds)."""
    from django.contrib.auth.models import Permission
    from django.utils import timezone

    from accounts.models import User
    from accounts.services import token_for_user
    from catalog.models import Product
    from stock.models import Movement, MovementKind, StockLevel
    from stock.services import stock_purchase, stock_receive
    from stores.models import Role
    from stores.services import membership_grant, store_create

    admin = User.objects.create_superuser("bench-admin")
    store = store_create(code=STORE, name="Bench", actor=admin)
    clerk = User.objects.create_user("bench-clerk")
    membership_grant(store=store, user=clerk, role=Role.CLERK, actor=admin)
    staff = User.objects.create_user("bench-staff", is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="stock", codename="view_stocklevel")
    )
    read_skus = [SKU_HIT.format(i) for i in range(HOT_LEVELS)]
    read_skus += [SKU_MISS.format(i) for i in range(miss_levels)]
    products = Product.objects.bulk_create(
        Product(sku=sku, name=f"Bench {sku}", price="1.00")
        for sku in [*read_skus, SKU_SALE, SKU_SOLD_OUT, SKU_PGBENCH]
    )
    by_sku = {product.sku: product for product in products}
    now = timezone.now()
    StockLevel.objects.bulk_create(
        StockLevel(store=store, product=by_sku[sku], on_hand=100, version=1, updated_at=now)
        for sku in read_skus
    )
    Movement.objects.bulk_create(
        Movement(store=store, product=by_sku[sku], kind=MovementKind.RECEIVE,
                 delta_on_hand=100, delta_reserved=0, on_hand_after=100, reserved_after=0,
                 version_after=1, reference="seed", created_at=now)
        for sku in read_skus
    )  # fmt: skip
    for sku in (SKU_SALE, SKU_PGBENCH):
        stock_receive(store=store, product=by_sku[sku], quantity=UNITS, actor=admin)
    stock_receive(store=store, product=by_sku[SKU_SOLD_OUT], quantity=1, actor=admin)
    stock_purchase(store=store, product=by_sku[SKU_SOLD_OUT], quantity=1, actor=admin)
    return {
        "member": token_for_user(user=clerk, actor=admin).key,
        "staff": token_for_user(user=staff, actor=admin).key,
        "store": store,
        "pgbench_product": by_sku[SKU_PGBENCH],
        "actor": clerk,
    }


def guarded_statement(store, product, actor) -> str:
    """The statement the stock services run for a sale of one unit
    (``guarded_change_statement``), with its parameters bound, for pgbench."""
    from django.db import connection
    from django.utils import timezone

    from stock.models import MovementKind
    from stock.services.sql import Change, guarded_change_statement

    change = Change(store=store, product=product, kind=MovementKind.SALE,
                    delta_on_hand=-1, reference="pgbench", actor=actor)  # fmt: skip
    with connection.cursor() as cursor:
        statement = cursor.mogrify(*guarded_change_statement(change, timezone.now()))
    statement = statement.decode() if isinstance(statement, bytes) else statement
    return " ".join(statement.split()) + ";\n"


def ledger_check(sales_answered: int) -> tuple[bool, list[str]]:
    """Nothing oversold: every level's on_hand and reserved are the sums of its
    movements, 0 <= reserved <= on_hand; the sold-out level sold nothing more; the hot
    SKU's sales are at least the purchases answered 2xx (a request cut off at the end of
    a wrk run may have committed unanswered)."""
    from django.db import connection

    from stock.models import Movement, MovementKind, StockLevel

    level, movement = StockLevel._meta.db_table, Movement._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*),
                   count(*) FILTER (WHERE l.on_hand <> coalesce(m.on_hand, 0)
                                       OR l.reserved <> coalesce(m.reserved, 0)),
                   count(*) FILTER (WHERE l.on_hand < 0 OR l.reserved < 0
                                       OR l.reserved > l.on_hand)
              FROM {level} l
              LEFT JOIN (SELECT store_id, product_id, sum(delta_on_hand) AS on_hand,
                                sum(delta_reserved) AS reserved
                           FROM {movement} GROUP BY 1, 2) m
                     ON m.store_id = l.store_id AND m.product_id = l.product_id
            """
        )
        levels, off_ledger, out_of_bounds = cursor.fetchone()
    sales = Movement.objects.filter(product__sku=SKU_SALE, kind=MovementKind.SALE).count()
    sold_out = StockLevel.objects.get(product__sku=SKU_SOLD_OUT)
    sold_out_sales = Movement.objects.filter(
        product__sku=SKU_SOLD_OUT, kind=MovementKind.SALE
    ).count()
    hot = StockLevel.objects.get(product__sku=SKU_SALE)
    checks = [
        (off_ledger == 0, f"{levels} levels, {off_ledger} whose on_hand/reserved differ "
                          "from the sum of their movements"),
        (out_of_bounds == 0, f"{out_of_bounds} levels outside 0 <= reserved <= on_hand"),
        (sold_out.on_hand == 0 and sold_out_sales == 1,
         f"sold-out level: on_hand {sold_out.on_hand}, {sold_out_sales} sale (the seed's)"),
        (sales >= sales_answered and hot.on_hand == UNITS - sales,
         f"hot SKU: {sales} sales committed, {sales_answered} purchases answered 2xx, "
         f"on_hand {hot.on_hand} = {UNITS} - {sales}"),
    ]  # fmt: skip
    return all(ok for ok, _ in checks), [
        f"check, {text}: {'OK' if ok else 'FAILED'}" for ok, text in checks
    ]


# --- pgbench ---------------------------------------------------------------------------


def run_pgbench(statement_file: Path, seconds: float, work: Path) -> dict:
    pg, database = pg_args(DATABASE_URL)
    prefix = work / f"pgbench-{time.monotonic_ns()}"
    output = checked(
        ["pgbench", *pg, "-n", "-M", "prepared", "-c", str(PGBENCH_CLIENTS), "-j", "2",
         "-T", str(max(1, round(seconds))), "-f", str(statement_file), "-l",
         "--log-prefix", str(prefix), database],
        os.environ.copy(), "pgbench", timeout=seconds + 60,
    )  # fmt: skip
    latencies = []
    for log_file in work.glob(f"{prefix.name}.*"):
        latencies += [int(line.split()[2]) for line in log_file.read_text().splitlines()]
        log_file.unlink()
    latencies.sort()
    tps = float(re.search(r"tps = ([\d.]+)", output).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", output)

    def percentile(pct):
        return latencies[min(len(latencies) - 1, int(len(latencies) * pct / 100))]

    return {
        "rps": tps,
        "requests": len(latencies),
        "p50_us": percentile(50),
        "p99_us": percentile(99),
        "ok": len(latencies),
        "unexpected": int(failed.group(1)) if failed else 0,
        "first_unexpected": 0,
        "socket_errors": 0,
    }


# --- Run ---------------------------------------------------------------------------------


def main() -> int:
    started = time.monotonic()
    require_tools("wrk", "pgbench", "createdb", "dropdb", "psql")
    refuse_existing_database(DATABASE_URL)

    work = Path(tempfile.mkdtemp(prefix="http-bench-"))
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    redis_server, redis_url, redis_client = scratch_redis(REDIS_URL, work)
    port = free_port()
    variables = deployed_variables(
        database_url=DATABASE_URL, redis_url=redis_url, cache_prefix=prefix, secret="http-bench"
    )
    env = project_env(**variables)
    web_env = {**env, **web_variables(port, work)}
    server = worker = None
    created, ok = False, False
    try:
        checked(["createdb", *pg_args(DATABASE_URL)[0], pg_args(DATABASE_URL)[1]], env, "createdb")
        created = True
        log(f"created database {pg_args(DATABASE_URL)[1]}; migrating")
        checked(["bin/run", "migrate"], env, "bin/run migrate", timeout=180)
        os.environ.update(variables)  # this process seeds and checks the same database
        import django

        django.setup()
        data = seed(MISS_LEVELS)
        statement = guarded_statement(data["store"], data["pgbench_product"], data["actor"])
        statement_file = work / "guarded.sql"
        statement_file.write_text(statement)
        log(f"seeded 1 store, {HOT_LEVELS} hit + {MISS_LEVELS} miss levels, a hot SKU with "
            f"{UNITS:,} units, a sold-out level")  # fmt: skip

        worker = start_worker(env, work / "worker.log")
        server = start_web(web_env, work / "web.log", *WEB_ARGS)
        gunicorn_pids = session_pids(server.pid)
        log(f"bin/run web {' '.join(WEB_ARGS)} on :{port} ({len(gunicorn_pids)} processes: "
            f"master + workers), bin/run worker; wrk -t1 -c{CONNECTIONS}")  # fmt: skip

        script = work / "bench.lua"
        script.write_text(WRK_SCRIPT)
        url = f"http://127.0.0.1:{port}"
        from django.core.cache import cache

        from stock import cache as stock_cache

        generation_key = cache.make_key(getattr(stock_cache, "GENERATION_KEY", "stock:generation"))
        hits = [level_path(SKU_HIT.format(i)) for i in range(HOT_LEVELS)]
        misses = [level_path(SKU_MISS.format(i)) for i in range(MISS_LEVELS)]
        purchase = [level_path(SKU_SALE) + "purchase/"]
        sold_out = [level_path(SKU_SOLD_OUT) + "purchase/"]
        body = json.dumps({"quantity": 1})

        def wrk(**kwargs):
            return lambda seconds: run_wrk(
                url, script, seconds=seconds, connections=CONNECTIONS, work=work, **kwargs
            )

        def miss_run(seconds):
            redis_client.incr(generation_key)  # retires every cached level at once
            return run_wrk(url, script, paths=misses, token=data["member"], seconds=seconds,
                           connections=CONNECTIONS, work=work)  # fmt: skip

        def keyed_purchase(seconds):
            return run_wrk(url, script, paths=purchase, token=data["member"], method="POST",
                           body=body, key_prefix=uuid.uuid4().hex[:12], expected="200,201",
                           seconds=seconds, connections=CONNECTIONS, work=work)  # fmt: skip

        scenarios = {
            "/healthz": wrk(paths=["/healthz"]),
            "GET hit, member": wrk(paths=hits, token=data["member"]),
            "GET hit, staff": wrk(paths=hits, token=data["staff"]),
            "GET miss, member": miss_run,
            "purchase": wrk(paths=purchase, token=data["member"], method="POST", body=body,
                            expected="200,201"),
            "purchase + key": keyed_purchase,
            "sold-out purchase": wrk(paths=sold_out, token=data["member"], method="POST",
                                     body=body, expected="409"),
            "pgbench UPDATE": lambda seconds: run_pgbench(statement_file, seconds, work),
        }  # fmt: skip

        def measure(name: str, seconds: float) -> dict:
            app = cpu_by_pid(session_pids(server.pid))
            db = cpu_by_pid(database_backends())
            busy, wall = machine_busy_seconds(), time.monotonic()
            result = scenarios[name](seconds)
            wall = time.monotonic() - wall
            count = max(result["requests"], 1)
            if name != "pgbench UPDATE":
                result["app_ms"] = 1000 * cpu_used_since(app, session_pids(server.pid)) / count
            result["db_ms"] = 1000 * cpu_used_since(db, database_backends()) / count
            result["busy"] = (machine_busy_seconds() - busy) / wall / (os.cpu_count() or 1)
            return result

        for name in scenarios:  # warm-up: imports, connections, cache entries
            measure(name, WARMUP)
        results = {name: [] for name in scenarios}
        names = list(scenarios)
        for round_ in range(REPEATS):
            shift = round_ * 3 % len(names)
            for name in names[shift:] + names[:shift]:
                results[name].append(measure(name, DURATION))
            log(f"round {round_ + 1}/{REPEATS} done")
        answered = sum(
            run["ok"] for name in ("purchase", "purchase + key") for run in results[name]
        )
        stop(server)
        server = None
        ledger_ok, ledger_lines = ledger_check(answered)
        unexpected = sum(run["unexpected"] + run["socket_errors"] for runs in results.values()
                         for run in runs)  # fmt: skip
        audit = None
        from django.db import connections

        connections.close_all()
        stop(worker)
        worker = None
        drop_database(DATABASE_URL)
        created = False
        if AUDIT:
            audit = run_audit_bench(work)
        print_report(results, audit, len(gunicorn_pids))
        for line in ledger_lines:
            print(line)
        print(f"check, answers other than expected (or socket errors) in measured runs: "
              f"{unexpected}: {'OK' if not unexpected else 'FAILED'}")  # fmt: skip
        print(f"the run took {time.monotonic() - started:.0f}s")
        ok = ledger_ok and not unexpected
        if not ok:
            print("CHECK FAILED: see the lines above" + (
                f"; web log tail:\n{(work / 'web.log').read_text()[-2000:]}"))  # fmt: skip
    finally:
        for process in (server, worker):
            if process is not None:
                stop(process)
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if created:
            drop_database(DATABASE_URL)
        if redis_server is not None:
            redis_server.stop()
        else:
            for key in redis_client.scan_iter(match=f"{prefix}:*", count=1000):
                redis_client.delete(key)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


def run_audit_bench(work: Path) -> dict | None:
    """bench/audit_bench.py in its own process (its own database and Redis), shorter
    than its defaults; its figures come back through BENCH_RESULT_FILE."""
    result_file = work / "audit.json"
    env = {**os.environ, "BENCH_RESULT_FILE": str(result_file),
           "BENCH_DURATION": os.environ.get("BENCH_AUDIT_DURATION", "4"),
           "BENCH_REPEATS": os.environ.get("BENCH_AUDIT_REPEATS", "3")}  # fmt: skip
    for name in ("BENCH_DATABASE_URL", "BENCH_REDIS_URL"):
        env.pop(name, None)
    log("bench/audit_bench.py: purchase throughput with the audit log on and off")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "audit_bench.py")], env=env)
    if done.returncode != 0 or not result_file.exists():
        print(f"audit_bench.py failed ({done.returncode})")
        return {"failed": True}
    return json.loads(result_file.read_text())


def print_report(results: dict, audit: dict | None, processes: int):
    def med(name, field):
        return median(run.get(field) for run in results[name])

    health = med("/healthz", "rps")
    hit = med("GET hit, member", "rps")
    ratios = {name: med(name, "rps") / health for name in results}
    targets = {}
    for name in ("GET hit, member", "GET hit, staff"):
        passed = ratios[name] >= 0.5 and med(name, "p99_us") < 10_000
        targets[name] = f"{verdict(passed)} {TARGETS['hit']}"
    targets["purchase"] = f"{verdict(ratios['purchase'] >= 0.25)} {TARGETS['purchase']}"
    keyed = med("purchase + key", "rps") / med("purchase", "rps")
    targets["purchase + key"] = (
        f"{verdict(keyed >= 0.9)} {keyed:.2f} x purchase; {TARGETS['purchase-key']}"
    )
    sold_out = med("sold-out purchase", "rps") / hit
    targets["sold-out purchase"] = (
        f"{verdict(sold_out >= 0.8)} {sold_out:.2f} x hit; {TARGETS['sold-out']}"
    )
    print()
    print(f"median of {REPEATS} rounds x {DURATION:g}s per scenario, scenarios interleaved; "
          f"bin/run web {' '.join(WEB_ARGS) or '(defaults)'}: {processes} gunicorn "
          f"processes; wrk 1 thread x {CONNECTIONS} connections; "
          f"pgbench {PGBENCH_CLIENTS} clients")  # fmt: skip
    print(f"{'scenario':<19}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'app ms':>8}{'db ms':>7}"
          f"{'busy':>6}{'/healthz':>9}  target")  # fmt: skip
    for name in results:
        app = med(name, "app_ms")
        print(
            f"{name:<19}{med(name, 'rps'):>8.0f}{med(name, 'p50_us') / 1000:>8.2f}"
            f"{med(name, 'p99_us') / 1000:>8.2f}"
            + (f"{app:>8.2f}" if app == app else f"{'':>8}")
            + f"{med(name, 'db_ms'):>7.2f}{med(name, 'busy'):>6.0%}{ratios[name]:>9.2f}  "
            + targets.get(name, "")
        )
    print("per run req/s: " + "; ".join(
        f"{name} " + " ".join(f"{run['rps']:.0f}" for run in runs)
        for name, runs in results.items()))  # fmt: skip
    misses = results["GET miss, member"]
    print(f"GET miss: X-Cache {sum(r['misses'] for r in misses)} MISS / "
          f"{sum(r['hits'] for r in misses)} HIT (the stock generation bumped before each run; "
          f"{MISS_LEVELS} levels walked in order)")  # fmt: skip
    print(
        "pgbench runs the stock services' guarded sale statement (with its audit outbox "
        "INSERT when auditing is on), -M prepared, on its own row"
    )
    if audit is None:
        print("audit on / off: not measured (BENCH_AUDIT=0)")
    elif audit.get("failed"):
        print("audit on / off: MISS, bench/audit_bench.py failed (see its output above)")
    else:
        worst = min(audit["ratios"].values())
        print(f"audit on / off purchases/s (bench/audit_bench.py, relay {audit['relay']}): "
              + ", ".join(f"{name} {ratio:.2f}" for name, ratio in audit["ratios"].items())
              + f"  {verdict(worst >= 0.85)} {TARGETS['audit']}")  # fmt: skip
    print(
        "app ms: CPU (user + system) of gunicorn's master and workers per request; db ms: "
        "of the PostgreSQL backends of the bench database; busy: share of all CPUs busy"
    )
    print(
        f"caveat: {os.cpu_count()} shared cores run wrk, gunicorn, PostgreSQL, Redis and "
        "the Celery worker together: compare the ratios, not the absolute figures"
    )


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
