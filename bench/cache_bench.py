"""What the stock-level cache buys over HTTP: ``GET .../stock/{sku}/`` on cache hits, on
cache misses, and ``/healthz`` (a JSON view touching neither database nor cache) as the
floor of the stack, served the way it is deployed.

    .venv/bin/python bench/cache_bench.py

- App: ``bin/run web`` (gunicorn, WEB_CONCURRENCY sync workers, DEBUG off, rate limits
  off) on PostgreSQL and Redis.
- Data: a scratch database (BENCH_DATABASE_URL, default ``inventory_bench``; created,
  migrated with ``bin/run migrate``, dropped at the end) seeded through the ORM and
  ``stock.services``: one store, MISS_LEVELS products with stock, a clerk with a token.
  Cache keys get a fresh CACHE_KEY_PREFIX in BENCH_REDIS_URL (db 11), deleted at the end.
- Load: ``wrk`` in its own process (keep-alive where the server allows it; gunicorn's
  sync workers close after each response), fixed duration per run, the scenarios
  interleaved over REPEATS rounds; the table shows the medians.
- Hits: HOT_LEVELS levels, read once before measuring, requested round-robin.
- Misses: before each miss run the stock key generation is bumped (INCR of the
  ``stock:generation`` key, which is how stock/cache.py retires every entry at once), and
  the run walks MISS_LEVELS distinct levels in order, so each request reads a level not
  read in this generation: database read plus cache fill. The X-Cache headers are
  counted to show the share of misses really measured.

Needs: PostgreSQL and Redis on 127.0.0.1 (or the two URLs), ``wrk`` on PATH
(``apt-get install -y wrk``), ``createdb``/``dropdb``.
"""

import json
import os
import shutil
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

from tests.processes import answers_health, free_port, project_env, stop, wait_until  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/inventory_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", str(2 * WORKERS)))
DURATION = int(os.environ.get("BENCH_DURATION", "4"))  # seconds per measured run
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
HOT_LEVELS = 4
MISS_LEVELS = int(os.environ.get("BENCH_MISS_LEVELS", "3000"))
STORE = "bench-01"

SEED = """
import json
from rest_framework.authtoken.models import Token
from accounts.models import User
from catalog.models import Product
from stock.services import stock_receive
from stores.models import Membership, Role, Store

store = Store.objects.create(code="{store}", name="Bench")
clerk = User.objects.create_user("bench-clerk")
Membership.objects.create(user=clerk, store=store, role=Role.CLERK)
products = Product.objects.bulk_create(
    Product(sku=f"BENCH-{{i:05d}}", name=f"Bench {{i}}", price="1.00") for i in range({count})
)
for product in products:
    stock_receive(store=store, product=product, quantity=100)
print("BENCH-SEED " + json.dumps({{"token": Token.objects.create(user=clerk).key}}))
"""

WRK_SCRIPT = """
paths, hits, misses, bad = {}, 0, 0, 0
local n, headers = 0, {}
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  if args[2] ~= "" then headers["Authorization"] = "Token " .. args[2] end
end
function request()
  n = n + 1
  return wrk.format("GET", paths[(n - 1) % #paths + 1], headers)
end
function response(status, hdrs, body)
  if status ~= 200 then bad = bad + 1 end
  local cache = hdrs["X-Cache"]
  if cache == "HIT" then hits = hits + 1 elseif cache == "MISS" then misses = misses + 1 end
end
local threads = {}
function setup(thread) threads[#threads + 1] = thread end
function done(summary, latency, requests)
  local h, m, b = 0, 0, 0
  for _, t in ipairs(threads) do
    h, m, b = h + t:get("hits"), m + t:get("misses"), b + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"hits": %d, "misses": %d, "non_200": %d, "socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    h, m, b, e.connect + e.read + e.write + e.timeout))
end
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def pg_args(url: str) -> tuple[list[str], str]:
    parts = urlparse(url)
    args = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    if parts.username:
        args += ["-U", parts.username]
    return args, parts.path.lstrip("/")


def checked(args: list[str], env: dict, what: str, timeout: float = 120) -> str:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-2000:]
        raise SystemExit(f"{what} failed ({done.returncode}):\n{output}")
    return done.stdout


def run_wrk(port: int, script: Path, paths: list[str], token: str, seconds: int, work: Path):
    paths_file = work / f"paths-{uuid.uuid4().hex[:6]}.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    output = checked(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s",
         "-s", str(script), f"http://127.0.0.1:{port}", "--", str(paths_file), token],
        os.environ.copy(), "wrk", timeout=seconds + 30,
    )  # fmt: skip
    line = next(line for line in output.splitlines() if line.startswith("BENCH-RESULT "))
    result = json.loads(line.removeprefix("BENCH-RESULT "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def main() -> None:
    started = time.monotonic()
    for tool in ("wrk", "createdb", "dropdb"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH (wrk: apt-get install -y wrk)")
    import redis

    redis_client = redis.Redis.from_url(REDIS_URL)
    redis_client.ping()
    pg, database = pg_args(DATABASE_URL)
    query = f"SELECT 1 FROM pg_database WHERE datname = '{database}'"
    existing = subprocess.run(
        ["psql", *pg, "-d", "postgres", "-tAc", query], capture_output=True, text=True
    ).stdout.strip()
    if existing == "1":
        raise SystemExit(f"database {database} exists (left by a crashed run?): dropdb {database}")

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="cache-bench-"))
    port = free_port()
    env = project_env(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        CACHE_KEY_PREFIX=prefix,
        DEBUG="false",
        SECRET_KEY="cache-bench-" + "x" * 50,
        ALLOWED_HOSTS="127.0.0.1",
        RATELIMIT_ENABLE="false",
        LOG_LEVEL="WARNING",
        PORT=str(port),
        BIND_ADDRESS="127.0.0.1",
        WEB_CONCURRENCY=str(WORKERS),
        STATIC_ROOT=str(work / "static"),
    )
    server, server_log, created = None, None, False
    try:
        checked(["createdb", *pg, database], env, "createdb")
        created = True
        log(f"created database {database}; migrating")
        checked(["bin/run", "migrate"], env, "bin/run migrate", timeout=180)
        seed = SEED.format(store=STORE, count=MISS_LEVELS)
        log(f"seeding 1 store, {MISS_LEVELS} products with stock, a clerk with a token")
        seeded = checked(
            [sys.executable, "manage.py", "shell", "-c", seed], env, "seeding", timeout=180
        )
        token = json.loads(
            next(line for line in seeded.splitlines() if line.startswith("BENCH-SEED "))[11:]
        )["token"]

        server_log = open(work / "web.log", "w+")
        server = subprocess.Popen(
            ["bin/run", "web"], cwd=ROOT, stdout=server_log,
            env={**env, "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics")},
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        if (
            not wait_until(
                lambda: server.poll() is not None or answers_health(port), timeout=30, interval=0.2
            )
            or server.poll() is not None
        ):
            server_log.seek(0)
            raise SystemExit(f"bin/run web did not start:\n{server_log.read()[-3000:]}")
        log(f"bin/run web on :{port}, {WORKERS} workers; wrk -t1 -c{CONNECTIONS}")

        script = work / "bench.lua"
        script.write_text(WRK_SCRIPT)
        level = f"/api/v1/stores/{STORE}/stock/BENCH-{{:05d}}/"
        hot = [level.format(i) for i in range(HOT_LEVELS)]
        cold = [level.format(i) for i in range(MISS_LEVELS)]
        generation_key = f"{prefix}:1:stock:generation"

        def hit_run(seconds):
            return run_wrk(port, script, hot, token, seconds, work)

        def miss_run(seconds):
            redis_client.incr(generation_key)  # retire every cached level
            return run_wrk(port, script, cold, token, seconds, work)

        def healthz_run(seconds):
            return run_wrk(port, script, ["/healthz"], "", seconds, work)

        scenarios = {"stock GET, cache hit": hit_run, "stock GET, cache miss": miss_run,
                     "/healthz": healthz_run}  # fmt: skip
        for run in scenarios.values():  # warm-up: worker imports, connections, hot keys
            run(1)
        results = {name: [] for name in scenarios}
        for round_ in range(REPEATS):
            for name, run in scenarios.items():
                results[name].append(run(DURATION))
            log(f"round {round_ + 1}/{REPEATS} done")

        print_report(results, time.monotonic() - started)
    finally:
        if server is not None:
            stop(server)
        if server_log is not None:
            server_log.close()
        if created:
            subprocess.run(["dropdb", *pg, "--force", "--if-exists", database], check=False)
        try:
            keys = list(redis_client.scan_iter(match=f"{prefix}:*", count=1000))
            for start in range(0, len(keys), 1000):
                redis_client.delete(*keys[start : start + 1000])
        except redis.RedisError as error:
            print(f"could not delete the bench's cache keys ({prefix}:*): {error!r}")
        shutil.rmtree(work, ignore_errors=True)
        log(f"stopped the server, dropped {database}, deleted {prefix}:* keys "
            f"(total {time.monotonic() - started:.0f}s)")  # fmt: skip


def print_report(results: dict, elapsed: float) -> None:
    def median(name, field):
        return statistics.median(run[field] for run in results[name])

    print()
    print(f"median of {REPEATS} runs x {DURATION}s each, scenarios interleaved; "
          f"gunicorn {WORKERS} sync workers, wrk 1 thread x {CONNECTIONS} connections")  # fmt: skip
    print(f"{'scenario':<24}{'rps':>9}{'p50 ms':>9}{'p99 ms':>9}   rps per run        X-Cache")
    for name, runs in results.items():
        counts = ""
        if name != "/healthz":
            hits, misses = sum(r["hits"] for r in runs), sum(r["misses"] for r in runs)
            counts = f"{hits} HIT / {misses} MISS"
        failed = sum(r["non_200"] + r["socket_errors"] for r in runs)
        per_run = " ".join(f"{r['rps']:.0f}" for r in runs)
        print(
            f"{name:<24}{median(name, 'rps'):>9.0f}{median(name, 'p50_us') / 1000:>9.2f}"
            f"{median(name, 'p99_us') / 1000:>9.2f}   {per_run:<18} {counts}"
            + (f"  ({failed} failed!)" if failed else "")
        )
    hit, miss, health = "stock GET, cache hit", "stock GET, cache miss", "/healthz"
    print()
    print(f"hit vs miss:    {median(hit, 'rps') / median(miss, 'rps'):.2f}x rps, "
          f"p50 {median(miss, 'p50_us') / median(hit, 'p50_us'):.2f}x lower, "
          f"p99 {median(miss, 'p99_us') / median(hit, 'p99_us'):.2f}x lower")  # fmt: skip
    print(f"hit vs healthz: {median(hit, 'rps') / median(health, 'rps'):.2f}x the rps "
          f"of /healthz (p50 {median(hit, 'p50_us') / median(health, 'p50_us'):.1f}x)")  # fmt: skip
    print(
        "misses: stock key generation bumped before each run, "
        f"{MISS_LEVELS} distinct levels walked in order (a wrap-around would show as HITs)"
    )
    print(
        f"caveat: {os.cpu_count()} shared, noisy cores run the load generator, gunicorn, "
        "PostgreSQL and Redis together: compare the ratios, not the absolute figures; "
        f"the run took {elapsed:.0f}s"
    )


if __name__ == "__main__":
    main()
