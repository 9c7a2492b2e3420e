"""The system at seed 004's scale, over HTTP, against issue 14's targets: bulk jobs
applied by a real worker, a sustained stream of small jobs, and the read paths at
5,000,000 stock levels beside the same at 10 stores.

    make bench-scale        # or: .venv/bin/python bench/scale_bench.py

Two scratch databases are seeded with ``seed_demo``: the scale one (``--stores 10000
--products 500``, timed) and the baseline (``--stores 10 --products 500``). Each gets
its own ``bin/run web`` and ``bin/run worker`` (one private Redis, a database number
each), served as deployed: DEBUG off, rate limiting on with limits no run reaches.
Every figure is measured on both in the same run, their requests interleaved, so the
ratio scale / baseline holds when the shared machine's speed does not. See
bench/README.md for the phases, the variables that shorten them and what each figure
means. Exits 1 when a check fails (a job not done, an item not applied, a ledger that
does not balance, an answer other than the expected one): the figures would not measure
what they claim.
"""

import concurrent.futures
import cProfile
import io
import json
import os
import pstats
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from common import (
    ROOT,
    checked,
    cpu_by_pid,
    cpu_used_since,
    deployed_variables,
    drop_database,
    http_request,
    log,
    machine_busy_seconds,
    machine_load,
    median,
    percentile,
    pg_args,
    postgres_server_cpu,
    refuse_existing_database,
    require_tools,
    scratch_redis,
    session_pids,
    sql_rows,
    start_web,
    start_worker,
    verdict,
    web_variables,
)
from scale_reads import CACHE_MISS, READS, Read

from tests.processes import free_port, project_env, stop

POSTGRES = "postgres://postgres@127.0.0.1:5432/"
SCALE_URL = os.environ.get("BENCH_SCALE_DATABASE_URL", POSTGRES + "inventory_bench_scale")
BASE_URL = os.environ.get("BENCH_SCALE_BASE_DATABASE_URL", POSTGRES + "inventory_bench_scale_base")
STORES = int(os.environ.get("BENCH_SCALE_STORES", "10000"))
BASE_STORES = int(os.environ.get("BENCH_SCALE_BASE_STORES", "10"))
PRODUCTS = int(os.environ.get("BENCH_SCALE_PRODUCTS", "500"))
BULK_ITEMS = int(os.environ.get("BENCH_SCALE_BULK_ITEMS", "10000"))
BULK_ROUNDS = int(os.environ.get("BENCH_SCALE_BULK_ROUNDS", "3"))
STREAM_SECONDS = float(os.environ.get("BENCH_SCALE_STREAM_SECONDS", "60"))
# Seconds of the stream sent first and not measured: the first writes to its stores find
# the web and worker processes' lookups and PostgreSQL's pages of those levels cold.
STREAM_WARMUP = float(os.environ.get("BENCH_SCALE_STREAM_WARMUP", "5"))
STREAM_RATE = int(os.environ.get("BENCH_SCALE_STREAM_RATE", "1000"))  # changes per second
STREAM_JOB_ITEMS = int(os.environ.get("BENCH_SCALE_STREAM_JOB_ITEMS", "100"))
STREAM_SAMPLES = int(os.environ.get("BENCH_SCALE_STREAM_SAMPLES", "3"))  # SKUs read per job
STREAM_STORES = int(os.environ.get("BENCH_SCALE_STREAM_STORES", "10"))
# GETs per second, in all, that read the stream's changes back.
STREAM_READ_RATE = float(os.environ.get("BENCH_SCALE_STREAM_READ_RATE", "50"))
REQUESTS = int(os.environ.get("BENCH_SCALE_REQUESTS", "40"))  # per read and database
ROUNDS = int(os.environ.get("BENCH_SCALE_ROUNDS", "4"))
VERIFY_ROUNDS = int(os.environ.get("BENCH_SCALE_VERIFY_ROUNDS", "1"))
WORK = os.environ.get("BENCH_SCALE_WORK", "")  # logs and profiles; empty: a new temp dir
KEEP = os.environ.get("BENCH_SCALE_KEEP", "") == "1"  # keep the databases for a look

WARMUP_REQUESTS = 3
JOB_TIMEOUT = 600.0  # seconds a bulk job may take before the run gives up on it
SEEN_TIMEOUT = 30.0  # seconds a stream change may take to show before it counts unseen
STORE_CODE = "store-{:05d}"  # seed_demo's generated stores and products
SKU = "SKU-{:05d}"
BULK_STORE = "bench-bulk"
BULK_SKU = "BENCH-BULK-{:05d}"
RESULT = "BENCH-RESULT "
CPUS = os.cpu_count() or 1

SEED_TARGET_S = 300.0
BULK_TARGET = 20_000  # items per second, request to done
LAG_TARGET_S = 1.0  # p99, request to readable
PAGE_TARGET_MS = 200.0  # p50 at scale
PAGE_RATIO = 1.5  # p50 at scale / p50 at the baseline


@dataclass
class Deployment:
    """One seeded database with its own web server and worker."""

    label: str
    stores: int
    database_url: str
    redis_url: str = ""
    env: dict = field(default_factory=dict)
    port: int = 0
    web: subprocess.Popen | None = None
    worker: subprocess.Popen | None = None
    created: bool = False
    fixture: dict = field(default_factory=dict)  # the setup child's answer
    seed_seconds: float = 0.0

    @property
    def levels(self) -> int:
        return self.stores * PRODUCTS

    def get(self, path: str, user: str, auth: str = "token"):
        if auth == "session":
            return http_request(self.port, "GET", path, cookie=self.fixture["sessions"][user])
        return http_request(self.port, "GET", path, token=self.fixture["tokens"][user])

    def post(self, path: str, body: dict, user: str = "writer"):
        key = {"Idempotency-Key": uuid.uuid4().hex}
        return http_request(
            self.port, "POST", path, token=self.fixture["tokens"][user], body=body, headers=key
        )


class CpuMeter:
    """User + system CPU seconds of a deployment's worker and web server (their
    processes live as long as they do), of the PostgreSQL server (every database's:
    backends reconnect, and one that exited keeps counting there), of this process and
    of the whole machine, from /proc between ``__init__`` and ``read``."""

    def __init__(self, deployment: Deployment):
        self.deployment = deployment
        self.groups = self.pids()
        self.before = {name: cpu_by_pid(pids) for name, pids in self.groups.items()}
        self.db = postgres_server_cpu(deployment.database_url)
        self.busy, self.wall = machine_busy_seconds(), time.monotonic()
        self.own = time.process_time()  # this process, every thread

    def pids(self) -> dict[str, list[int]]:
        return {
            "worker": session_pids(self.deployment.worker.pid),
            "web": session_pids(self.deployment.web.pid),
        }

    def read(self) -> dict[str, float]:
        """CPU seconds per group since the start; ``db``: the PostgreSQL server's,
        ``bench``: this process's, ``machine``: all CPUs' busy seconds; ``wall``: the
        seconds elapsed."""
        now = self.pids()
        used = {
            name: cpu_used_since(self.before[name], set(pids) | set(now[name]))
            for name, pids in self.groups.items()
        }
        used["db"] = postgres_server_cpu(self.deployment.database_url) - self.db
        used["machine"] = machine_busy_seconds() - self.busy
        used["bench"] = time.process_time() - self.own
        used["wall"] = time.monotonic() - self.wall
        return used


# --- Children: Django on one database each ------------------------------------------


def child_main(mode: str, args: dict) -> None:
    """Run one task with Django set up on the database the environment names; print
    its answer as one RESULT line (anything else printed goes to stderr)."""
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    import django

    django.setup()
    tasks = {
        "setup": child_setup,
        "bulk-fixture": child_bulk_fixture,
        "verify": child_verify,
        "profile": child_profile,
    }
    protocol.write(RESULT + json.dumps(tasks[mode](**args)) + "\n")
    protocol.flush()


def child_setup(manager_stores: list[str], writer_stores: list[str]) -> dict:
    """The bench's logins: a superuser (staff), a manager of the first two stores (as
    seed_demo's manager), and the writer that sends the bulk jobs; an API token each,
    a logged-in admin session for staff and manager; the cache's generation key."""
    from django.conf import settings
    from django.core.cache import cache
    from django.test import Client

    from accounts.models import User
    from accounts.services import token_for_user
    from audit.models import AuditEvent, AuditOutboxEntry
    from catalog.models import Product
    from stock.cache import GENERATION_KEY
    from stock.models import Movement, StockLevel
    from stores.models import Role, Store
    from stores.services import membership_grant

    staff = User.objects.create_superuser("bench-staff")
    manager = User.objects.create_user("bench-manager")
    writer = User.objects.create_user("bench-writer")
    for user, codes in ((manager, manager_stores), (writer, writer_stores)):
        for store in Store.objects.filter(code__in=codes):
            membership_grant(store=store, user=user, role=Role.MANAGER, actor=staff)
    users = {"staff": staff, "manager": manager, "writer": writer}
    sessions = {}
    for name in ("staff", "manager"):
        client = Client()
        client.force_login(users[name])
        cookie = settings.SESSION_COOKIE_NAME
        sessions[name] = f"{cookie}={client.cookies[cookie].value}"
    return {
        "tokens": {
            name: token_for_user(user=user, actor=staff).key for name, user in users.items()
        },
        "sessions": sessions,
        "generation_key": cache.make_key(GENERATION_KEY),
        "tables": {
            "level": StockLevel._meta.db_table,
            "movement": Movement._meta.db_table,
            "store": Store._meta.db_table,
            "product": Product._meta.db_table,
            "event": AuditEvent._meta.db_table,
            "outbox": AuditOutboxEntry._meta.db_table,
        },
    }


def child_bulk_fixture(items: int) -> dict:
    """The bulk jobs' store: ``items`` products stocked there with ``stock_seed_levels``
    (so set and adjust update existing levels), the writer its manager."""
    from accounts.models import User
    from catalog.cache import new_catalog_generation
    from catalog.models import Product
    from stock.services import stock_seed_levels
    from stores.models import Role
    from stores.services import membership_grant, store_create

    staff = User.objects.get(username="bench-staff")
    store = store_create(code=BULK_STORE, name="Bench bulk", actor=staff)
    membership_grant(
        store=store, user=User.objects.get(username="bench-writer"), role=Role.MANAGER, actor=staff
    )
    products = Product.objects.bulk_create(
        (
            Product(sku=BULK_SKU.format(n), name=f"Bench bulk {n}", price="1.00")
            for n in range(items)
        ),
        batch_size=5000,
    )
    levels = stock_seed_levels(stores=[store], products=products, reference="bench")
    new_catalog_generation()  # bulk inserts send no post_save
    return {"levels": levels}


def child_verify() -> dict:
    """``verify_ledger``, timed in a process already set up (no start-up in the time)."""
    from django.core.management import CommandError, call_command

    output = io.StringIO()
    started = time.perf_counter()
    try:
        call_command("verify_ledger", stdout=output, stderr=output)
        ok = True
    except CommandError as error:
        output.write(f"\n{error}")
        ok = False
    return {"seconds": time.perf_counter() - started, "ok": ok, "output": output.getvalue()[-2000:]}


def child_profile(out: str, requests: list[dict], jobs: list[dict]) -> dict:
    """For each missed target, where its time goes, written to a file in ``out``: one
    request (or bulk job) run in this process under cProfile, its SQL statements timed,
    and EXPLAIN (ANALYZE, BUFFERS) of the slowest (rolled back). Returns {name: file}."""
    from django.conf import settings
    from django.test import Client, override_settings

    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    files = {}
    with override_settings(STORAGES=storages, ALLOWED_HOSTS=["testserver"]):
        for request in requests:
            files[request["name"]] = _profile_request(Client, Path(out), **request)
    for job in jobs:
        files[job["name"]] = _profile_bulk(Path(out), **job)
    return files


def _profile_request(client_class, out: Path, *, name, path, user, auth, cache_miss) -> str:
    from rest_framework.authtoken.models import Token

    from accounts.models import User
    from stock.cache import stock_level_cache

    account = User.objects.get(username=f"bench-{user}")
    if auth == "session":
        client = client_class()
        client.force_login(account)
    else:
        client = client_class(HTTP_AUTHORIZATION=f"Token {Token.objects.get(user=account).key}")
    for _ in range(2):
        client.get(path)
    if cache_miss:
        stock_level_cache.drop_all()

    def run():
        response = client.get(path)
        return f"{path}: {response.status_code}, {len(response.content)} bytes"

    return _profiled(out, name, run)


def _profile_bulk(out: Path, *, name, mode, items) -> str:
    """One bulk job submitted and applied here (no worker runs now: its queue message
    stays unread), as the worker applies it."""
    from accounts.models import User
    from stock.services import bulk_job_run, bulk_job_submit
    from stores.models import Store

    job = bulk_job_submit(
        store=Store.objects.get(code=BULK_STORE),
        mode=mode,
        items=[bulk_item(mode, n, 99) for n in range(items)],
        actor=User.objects.get(username="bench-writer"),
    )

    def run():
        done = bulk_job_run(job.pk)
        return f"bulk {mode} job of {items} items: {done.status if done else 'not run'}"

    return _profiled(out, name, run)


def _profiled(out: Path, name: str, run) -> str:
    from django.db import connection, transaction

    statements = []

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((time.perf_counter() - started, sql, params, many))

    profiler = cProfile.Profile()
    with connection.execute_wrapper(timed):
        started = time.perf_counter()
        profiler.enable()
        outcome = run()
        profiler.disable()
        seconds = time.perf_counter() - started
    slowest = sorted(statements, key=lambda statement: -statement[0])
    lines = [
        f"{name}: {outcome}",
        f"{seconds * 1000:.1f} ms in this process (profiled: slower than unprofiled), "
        f"{len(statements)} SQL statements taking {sum(s[0] for s in statements) * 1000:.1f} ms",
        "",
        "Slowest statements:",
    ]
    for elapsed, sql, _params, _many in slowest[:10]:
        lines.append(f"  {elapsed * 1000:8.1f} ms  {' '.join(sql.split())[:300]}")

    class RolledBack(Exception):
        pass

    for elapsed, sql, params, many in slowest[:3]:
        if many or not re.match(r"\s*(SELECT|WITH|UPDATE|INSERT|DELETE)\b", sql, re.I):
            continue
        with connection.cursor() as cursor:
            statement = cursor.mogrify(sql, params)
            statement = statement.decode() if isinstance(statement, bytes) else statement
            try:
                with transaction.atomic():
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                    raise RolledBack
            except RolledBack:
                pass
        lines += ["", f"EXPLAIN ANALYZE of the {elapsed * 1000:.1f} ms statement:"]
        lines += [f"  {' '.join(sql.split())[:2000]}", plan]
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
    lines += ["", "cProfile, by cumulative time:", text.getvalue()]
    path = out / f"profile-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.txt"
    path.write_text("\n".join(lines))
    return str(path)


def run_child(deployment: Deployment, mode: str, timeout: float = 3600, **args) -> dict:
    """``scale_bench.py --child <mode>`` on ``deployment``'s database; its answer."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", mode, json.dumps(args)],
        cwd=ROOT, env=deployment.env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    line = next((line for line in done.stdout.splitlines() if line.startswith(RESULT)), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"child {mode} on {deployment.label} failed:\n{done.stderr[-3000:]}")
    return json.loads(line.removeprefix(RESULT))


# --- Seeding ---------------------------------------------------------------------------


def seed(deployment: Deployment, work: Path) -> None:
    pg, database = pg_args(deployment.database_url)
    checked(["createdb", *pg, database], deployment.env, "createdb")
    deployment.created = True
    checked(["bin/run", "migrate"], deployment.env, "bin/run migrate", timeout=300)
    log(f"{deployment.label}: seed_demo --stores {deployment.stores} --products {PRODUCTS}")
    started = time.perf_counter()
    output = checked(
        ["python", "manage.py", "seed_demo", "--stores", str(deployment.stores),
         "--products", str(PRODUCTS)],
        deployment.env, "seed_demo", timeout=3600,
    )  # fmt: skip
    deployment.seed_seconds = time.perf_counter() - started
    (work / f"seed-{database}.log").write_text(output)
    log(f"{deployment.label}: seeded in {deployment.seed_seconds:.1f} s")


def stream_stores(deployment: Deployment) -> list[str]:
    """The stores the stream writes to: the last ones, away from the pages read."""
    first = max(3, deployment.stores - STREAM_STORES + 1)
    return [STORE_CODE.format(n) for n in range(first, deployment.stores + 1)]


# --- Reads -----------------------------------------------------------------------------


PAGE = STORE_CODE.format(1)  # the store whose pages are read (managed by bench-manager)
# The reads of scale_reads.py, over HTTP; the cache misses of random levels of every
# store (there: of one store, its lookups warm).
ALL_READS = (CACHE_MISS, *READS)


def read_path(read: Read, request: int) -> str:
    """The path of ``read`` for its ``request``-th request (not for CACHE_MISS)."""
    return read.path.format(store=PAGE, sku=SKU.format(request % PRODUCTS + 1))


def level_paths(deployment: Deployment, count: int, seed_: int) -> list[str]:
    """``count`` distinct random levels of all the deployment's stores."""
    rng = random.Random(seed_)
    pairs = set()
    while len(pairs) < min(count, deployment.levels):
        pairs.add((rng.randint(1, deployment.stores), rng.randint(1, PRODUCTS)))
    return [
        CACHE_MISS.path.format(store=STORE_CODE.format(store), sku=SKU.format(product))
        for store, product in sorted(pairs, key=lambda pair: rng.random())
    ]


def measure_reads(deployments: list[Deployment], reads, redis_clients) -> dict:
    """Every read ``REQUESTS`` times on each deployment over ``ROUNDS`` rounds (the
    order of the reads rotated between rounds), the deployments alternating request by
    request. Returns {read name: {label: {"seconds": [...], "bad": [...]}}}."""
    per_round = max(1, REQUESTS // ROUNDS)
    results = {r.name: {d.label: {"seconds": [], "bad": []} for d in deployments} for r in reads}
    misses = {
        d.label: iter(level_paths(d, per_round * ROUNDS + WARMUP_REQUESTS, 14)) for d in deployments
    }

    count = iter(range(10**9))

    def one(read: Read, deployment: Deployment, record: bool) -> None:
        miss = read is CACHE_MISS
        path = next(misses[deployment.label]) if miss else read_path(read, next(count))
        answer = deployment.get(path, read.user, read.auth)
        if not record:
            return
        result = results[read.name][deployment.label]
        result["seconds"].append(answer.seconds)
        if answer.status != 200 or (miss and answer.headers.get("x-cache") != "MISS"):
            result["bad"].append(
                f"{path}: {answer.status} X-Cache {answer.headers.get('x-cache')} "
                f"{answer.body[:200]!r}"
            )

    for round_ in range(ROUNDS):
        shift = round_ % len(reads)
        for read in reads[shift:] + reads[:shift]:
            if read is CACHE_MISS:
                for deployment in deployments:  # every cached level retired at once
                    redis_clients[deployment.label].incr(deployment.fixture["generation_key"])
            if round_ == 0:
                for deployment in deployments:
                    for _ in range(WARMUP_REQUESTS):
                        one(read, deployment, record=False)
            for i in range(per_round):
                order = deployments if (i + round_) % 2 == 0 else deployments[::-1]
                for deployment in order:
                    one(read, deployment, record=True)
        log(f"reads: round {round_ + 1}/{ROUNDS} done")
    return results


# --- Bulk jobs -------------------------------------------------------------------------


def bulk_item(mode: str, n: int, round_: int) -> dict:
    """Item ``n`` of a job: a set changes every level (the value moves with the round),
    an adjust adds one unit."""
    if mode == "set":
        return {"sku": BULK_SKU.format(n), "on_hand": 1000 + round_ * 10 + n % 7}
    return {"sku": BULK_SKU.format(n), "delta": 1}


def run_bulk_job(deployment: Deployment, mode: str, round_: int, items: int) -> dict:
    """One job of ``items`` items: POST, then its status read until it is done or
    failed; the time is from sending the POST to reading ``done``."""
    body = {"mode": mode, "items": [bulk_item(mode, n, round_) for n in range(items)]}
    meter = CpuMeter(deployment)
    started = time.perf_counter()
    answer = deployment.post(f"/api/v1/stores/{BULK_STORE}/stock/bulk/", body)
    if answer.status != 202:
        return {"error": f"POST answered {answer.status}: {answer.body[:300]!r}"}
    status_url = urlsplit(answer.json()["status_url"]).path
    while time.perf_counter() - started < JOB_TIMEOUT:
        job = deployment.get(status_url, "writer")
        if job.status != 200:
            return {"error": f"GET {status_url} answered {job.status}: {job.body[:300]!r}"}
        state = job.json()
        if state["status"] in ("done", "failed"):
            seconds = time.perf_counter() - started
            cpu = meter.read()
            return {
                "seconds": seconds,
                "cpu": cpu,
                # The next job starts once this one's audit entries are relayed.
                "relay_seconds": relayed_after(deployment),
                "post_seconds": answer.seconds,
                "rate": items / seconds,
                "state": state,
                "ok": state["status"] == "done" and state["applied"] == items
                and state["failed"] == 0,
            }  # fmt: skip
        # Every 20 ms at first, then every 5% of the time so far: the reads cost the
        # same CPUs as the job, and a long job needs no finer resolution.
        time.sleep(max(0.02, (time.perf_counter() - started) / 20))
    return {"error": f"job {status_url} not finished after {JOB_TIMEOUT:.0f} s"}


def bulk_endpoint_missing(deployment: Deployment) -> str:
    """Why there is no bulk endpoint to measure ("" when there is one: an empty job is
    refused with 400)."""
    answer = deployment.post(f"/api/v1/stores/{BULK_STORE}/stock/bulk/", {"mode": "set"})
    if answer.status == 400:
        return ""
    return f"POST /api/v1/stores/{BULK_STORE}/stock/bulk/ answered {answer.status}"


def measure_bulk(deployments: list[Deployment]) -> dict:
    """``BULK_ROUNDS`` rounds of a set and an adjust job on each deployment, the order
    of modes and deployments alternating; after a small warm-up job each."""
    results = {(mode, d.label): [] for mode in ("set", "adjust") for d in deployments}
    for deployment in deployments:
        run_bulk_job(deployment, "adjust", -1, min(100, BULK_ITEMS))
    for round_ in range(BULK_ROUNDS):
        modes = ("set", "adjust") if round_ % 2 == 0 else ("adjust", "set")
        for mode in modes:
            order = deployments if round_ % 2 == 0 else deployments[::-1]
            for deployment in order:
                results[mode, deployment.label].append(
                    run_bulk_job(deployment, mode, round_, BULK_ITEMS)
                )
        log(f"bulk: round {round_ + 1}/{BULK_ROUNDS} done")
    return results


# --- The stream ------------------------------------------------------------------------


class LagReader:
    """One thread reading the sampled SKUs of the jobs sent, at most ``rate`` GETs per
    second in all (the measuring reads must not take the CPUs that apply the jobs, more
    so as a backlog grows): each round it reads, oldest job first, the first sample of
    every job not yet seen in full; a job's items show together (one batch, one commit),
    so its next samples usually show at their first read."""

    def __init__(self, deployment: Deployment, rate: float):
        self.deployment, self.interval = deployment, 1 / rate
        self.pending: dict[int, list] = {}  # job -> [(store, sku, target, sent_at), ...]
        self.lags: dict[int, list[float]] = {}
        self.gaps: list[float] = []  # seconds between two reads of one sample
        self.reads, self.lock, self.sending = 0, threading.Lock(), True
        self.thread = threading.Thread(target=self.run, daemon=True)

    def add(self, job: int, samples: list[tuple]) -> None:
        with self.lock:
            self.pending[job] = list(samples)
            self.lags[job] = []

    def run(self) -> None:
        last_read, next_read = {}, time.perf_counter()
        while True:
            with self.lock:
                jobs = sorted(self.pending)
                if not jobs and not self.sending:
                    return
            if not jobs:
                time.sleep(0.005)
                continue
            for job in jobs:
                store, sku, target, sent_at = self.pending[job][0]
                if time.perf_counter() - sent_at > SEEN_TIMEOUT:
                    with self.lock:
                        del self.pending[job]  # its samples stay unseen
                    continue
                time.sleep(max(0.0, next_read - time.perf_counter()))
                next_read = time.perf_counter() + self.interval
                read = self.deployment.get(f"/api/v1/stores/{store}/stock/{sku}/", "writer")
                now = time.perf_counter()
                self.reads += 1
                if (job, sku) in last_read:
                    self.gaps.append(now - last_read[job, sku])
                last_read[job, sku] = now
                if read.status == 200 and read.json()["version"] >= target:
                    with self.lock:
                        self.lags[job].append(now - sent_at)
                        self.pending[job].pop(0)
                        if not self.pending[job]:
                            del self.pending[job]

    def unseen(self, job: int) -> int:
        return STREAM_SAMPLES - len(self.lags.get(job, []))


def measure_stream(deployment: Deployment, work: Path) -> dict:
    """``STREAM_RATE`` changes per second as ``STREAM_JOB_ITEMS``-item adjust jobs
    (+1 each), sent on schedule for ``STREAM_WARMUP`` seconds (not measured, but
    checked), then ``STREAM_SECONDS`` whatever the answers take (each POST in its own
    thread), round-robin over the stream stores, each job a window of their SKUs.
    ``STREAM_SAMPLES`` SKUs of each job are read back (``LagReader``) until their version
    shows the change: a lag is from sending the POST to that answer."""
    tables = deployment.fixture["tables"]
    stores = stream_stores(deployment)
    rows = sql_rows(
        deployment.database_url,
        f"SELECT s.code, p.sku, l.version FROM {tables['level']} l "
        f"JOIN {tables['store']} s ON s.id = l.store_id "
        f"JOIN {tables['product']} p ON p.id = l.product_id WHERE s.code = ANY(%s)",
        (stores,),
    )
    versions = {(code, sku): version for code, sku, version in rows}
    items = min(STREAM_JOB_ITEMS, PRODUCTS)
    windows = max(1, PRODUCTS // items)
    interval = items / STREAM_RATE
    warmup = int(STREAM_WARMUP / interval)  # jobs sent before the measured ones
    jobs = warmup + max(1, int(STREAM_SECONDS / interval))
    rng = random.Random(1000)
    records, lock = {}, threading.Lock()
    reader = LagReader(deployment, STREAM_READ_RATE)

    def send(number: int, store: str, skus: list[str], samples: list[tuple]) -> None:
        body = {"mode": "adjust", "items": [{"sku": sku, "delta": 1} for sku in skus]}
        sent_at = time.perf_counter()
        answer = deployment.post(f"/api/v1/stores/{store}/stock/bulk/", body)
        record = {"job": number, "store": store, "sent_at": sent_at,
                  "post_s": answer.seconds, "status": answer.status}  # fmt: skip
        if answer.status == 202:
            record["status_url"] = urlsplit(answer.json()["status_url"]).path
            reader.add(number, [(store, sku, target, sent_at) for sku, target in samples])
        else:
            record["error"] = answer.body[:300].decode(errors="replace")
        with lock:
            records[number] = record

    log(f"stream: {jobs} jobs of {items} adjust items ({warmup} of them warm-up), one every "
        f"{interval * 1000:.0f} ms, over {len(stores)} stores of {deployment.label}")  # fmt: skip
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=64)
    reader.thread.start()
    began = time.perf_counter()
    measured_from = began + warmup * interval
    slip = 0.0
    for number in range(jobs):
        if number == warmup:
            meter = CpuMeter(deployment)
        store = stores[number % len(stores)]
        window = (number // len(stores)) % windows
        skus = [SKU.format(window * items + n + 1) for n in range(items)]
        for sku in skus:
            versions[store, sku] += 1
        sampled = rng.sample(skus, min(STREAM_SAMPLES, len(skus)))
        due = began + number * interval
        time.sleep(max(0.0, due - time.perf_counter()))
        slip = max(slip, time.perf_counter() - due)
        pool.submit(send, number, store, skus, [(sku, versions[store, sku]) for sku in sampled])
    sent = time.perf_counter() - measured_from
    pool.shutdown(wait=True)
    reader.sending = False
    reader.thread.join()
    cpu = meter.read()
    log(f"stream: sent in {sent:.1f} s (at worst {slip * 1000:.0f} ms behind schedule), "
        "every change read back; reading every job's final state")  # fmt: skip
    finished = 0.0  # the last change seen, from the first measured job's sending
    for record in records.values():
        if record["status"] == 202:
            record["final"] = deployment.get(record["status_url"], "writer").json()
        lags = reader.lags.get(record["job"], [])
        finished = max([finished, *(record["sent_at"] - measured_from + lag for lag in lags)])
    csv = work / "stream-jobs.csv"
    with open(csv, "w") as out:
        out.write("job,warm-up,store,sent_at_s,post_ms,status,created_at,finished_at,applied,"
                  "lags_ms\n")  # fmt: skip
        for number in sorted(records):
            r, final = records[number], records[number].get("final", {})
            lags = " ".join(f"{lag * 1000:.0f}" for lag in reader.lags.get(number, []))
            cells = [number, int(number < warmup), r["store"], f"{r['sent_at'] - began:.3f}",
                     f"{r['post_s'] * 1000:.1f}", final.get("status", r["status"]),
                     final.get("created_at", ""), final.get("finished_at", ""),
                     final.get("applied", ""), lags]  # fmt: skip
            out.write(",".join(map(str, cells)) + "\n")
    measured = [records[n] for n in sorted(records) if n >= warmup]
    done = [
        r for r in records.values()
        if r.get("final", {}).get("status") == "done" and r["final"].get("applied") == items
    ]  # fmt: skip
    done_measured = [r for r in done if r["job"] >= warmup]
    return {
        "jobs": jobs - warmup,
        "all_jobs": jobs,
        "items": items,
        "sent_seconds": sent,
        "slip": slip,
        "done": len(done_measured),
        "all_done": len(done),
        "changes_per_s": len(done_measured) * items / max(finished, sent),
        "lags": [lag for r in measured for lag in reader.lags.get(r["job"], [])],
        "all_lags": [lag for lags in reader.lags.values() for lag in lags],
        "unseen": sum(reader.unseen(number) for number in records),
        "post": [record["post_s"] for record in measured],
        "reads_per_s": reader.reads / (time.perf_counter() - began),
        "read_gap": median(reader.gaps),
        "cpu": cpu,
        "errors": [r["error"] for r in records.values() if r.get("error")][:3],
        "csv": str(csv),
    }


# --- Run -----------------------------------------------------------------------------------


def relayed_after(deployment: Deployment) -> float:
    """Seconds until the deployment's audit outbox is empty (its worker has moved every
    entry into the hash-chained audit log), read every 0.1 s; NaN past JOB_TIMEOUT."""
    outbox = deployment.fixture["tables"]["outbox"]
    started = time.perf_counter()
    while time.perf_counter() - started < JOB_TIMEOUT:
        if sql_rows(deployment.database_url, f"SELECT count(*) FROM {outbox}")[0][0] == 0:
            return time.perf_counter() - started
        time.sleep(0.1)
    return float("nan")


def table_counts(deployment: Deployment) -> dict:
    tables = deployment.fixture["tables"]
    names = ("level", "movement", "event")
    query = "SELECT " + ", ".join(f"(SELECT count(*) FROM {tables[name]})" for name in names)
    return dict(zip(names, sql_rows(deployment.database_url, query)[0], strict=True))


@dataclass
class Figures:
    """What a run measured, for the report and the checks."""

    load_before: str
    reads: dict = field(default_factory=dict)
    bulk: dict | None = None  # None: not measured, for the reason in ``unmeasured``
    stream: dict | None = None
    unmeasured: str = ""
    relay: float = float("nan")  # seconds to relay the outbox after the stream
    verify: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)


def serve(deployments: list[Deployment], work: Path) -> None:
    """Seed each database, add the bench's logins, start its worker and web server."""
    for deployment in deployments:
        seed(deployment, work)
    for deployment in deployments:
        deployment.fixture = run_child(
            deployment, "setup",
            manager_stores=[STORE_CODE.format(1), STORE_CODE.format(2)],
            writer_stores=stream_stores(deployment),
        )  # fmt: skip
    checked(["bin/run", "collectstatic"], deployments[0].env, "collectstatic", timeout=300)
    for deployment in deployments:
        deployment.port = free_port()
        name = pg_args(deployment.database_url)[1]
        deployment.worker = start_worker(deployment.env, work / f"worker-{name}.log")
        web_env = {**deployment.env, **web_variables(deployment.port, work)}
        deployment.web = start_web(web_env, work / f"web-{name}.log")
    log("bin/run web and bin/run worker on each database")


def measure(deployments: list[Deployment], figures: Figures, redis_clients, work: Path) -> None:
    """The reads on the seeded data, then the bulk jobs and the stream, the audit pages
    again over what they wrote, and verify_ledger once the servers stopped."""
    scale = deployments[1]
    figures.reads = measure_reads(deployments, ALL_READS, redis_clients)
    log(f"bulk: the bulk store with {BULK_ITEMS:,} levels in each database")
    for deployment in deployments:
        run_child(deployment, "bulk-fixture", items=BULK_ITEMS)
    figures.unmeasured = bulk_endpoint_missing(scale)
    if figures.unmeasured:
        log(f"bulk and stream not measured: {figures.unmeasured}")
    else:
        figures.bulk = measure_bulk(deployments)
        figures.stream = measure_stream(scale, work)
        figures.relay = relayed_after(scale)
        audit_reads = [read for read in READS if read.path == "/api/v1/audit/"]
        after = measure_reads(deployments, audit_reads, redis_clients)
        figures.reads.update({f"{name}, after the writes": r for name, r in after.items()})
    for deployment in deployments:
        stop(deployment.web)
        stop(deployment.worker)
        deployment.web = deployment.worker = None
    figures.verify = {d.label: [] for d in deployments}
    for round_ in range(VERIFY_ROUNDS):
        for deployment in deployments if round_ % 2 == 0 else deployments[::-1]:
            log(f"verify_ledger on {deployment.label}")
            figures.verify[deployment.label].append(run_child(deployment, "verify"))
    figures.counts = {d.label: table_counts(d) for d in deployments}


def main() -> int:
    started = time.monotonic()
    require_tools("createdb", "dropdb", "psql", "redis-server")
    if PRODUCTS <= 24 and min(STORES, BASE_STORES) <= 8:
        raise SystemExit("seed_demo builds its generated stores (store-00001, ...) only above "
                         "8 stores or 24 products: raise BENCH_SCALE_PRODUCTS")  # fmt: skip
    for url in (SCALE_URL, BASE_URL):
        refuse_existing_database(url)
    work = Path(WORK) if WORK else Path(tempfile.mkdtemp(prefix="scale-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    figures = Figures(load_before=machine_load())
    redis_server, redis_url, _ = scratch_redis("", work)
    base = Deployment(f"{BASE_STORES:,} x {PRODUCTS}", BASE_STORES, BASE_URL)
    scale = Deployment(f"{STORES:,} x {PRODUCTS}", STORES, SCALE_URL)
    deployments = [base, scale]
    import redis

    redis_clients = {}
    for number, deployment in enumerate(deployments):  # a Redis database number each
        deployment.redis_url = redis_url.rsplit("/", 1)[0] + f"/{number}"
        redis_clients[deployment.label] = redis.Redis.from_url(deployment.redis_url)
        deployment.env = project_env(
            **deployed_variables(database_url=deployment.database_url,
                                 redis_url=deployment.redis_url,
                                 cache_prefix=f"scale-bench-{number}", secret="scale-bench"),
            STATIC_ROOT=str(work / "static"),
        )  # fmt: skip
    ok = False
    try:
        serve(deployments, work)
        measure(deployments, figures, redis_clients, work)
        if misses := report(deployments, figures, work):
            log("profiling the misses on the scale database")
            for name, path in run_child(scale, "profile", out=str(work), **misses).items():
                print(f"profile of {name}: {path}")
        ok = checks(figures)
        print(f"logs and profiles: {work}; the run took {time.monotonic() - started:.0f} s")
    finally:
        for deployment in deployments:
            for process in (deployment.web, deployment.worker):
                if process is not None:
                    stop(process)
            if deployment.created and not KEEP:
                drop_database(deployment.database_url)
        if redis_server is not None:
            redis_server.stop()
        for name in ("static", "redis"):
            shutil.rmtree(work / name, ignore_errors=True)
        for metrics in work.glob("metrics-*"):
            shutil.rmtree(metrics, ignore_errors=True)
    return 0 if ok else 1


# --- Report ----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def report(deployments: list[Deployment], figures: Figures, work: Path) -> dict:
    """Print every figure beside its target; return what to profile for each MISS."""
    base, scale = deployments
    bulk, stream, counts = figures.bulk, figures.stream, figures.counts
    print()
    print(f"== issue 14 at scale: {base.label} (baseline) against {scale.label} "
          f"({scale.levels:,} levels); {os.cpu_count()} shared cores; "
          f"load average before the run {figures.load_before}")  # fmt: skip
    for label, rows in counts.items():
        print(f"   {label}: {rows['level']:,} levels, {rows['movement']:,} movements, "
              f"{rows['event']:,} audit events at the end")  # fmt: skip
    seed_log = work / f"seed-{pg_args(scale.database_url)[1]}.log"
    print(f"\nseed_demo --stores {scale.stores} --products {PRODUCTS}: "
          f"{scale.seed_seconds:.1f} s  {verdict(scale.seed_seconds <= SEED_TARGET_S)} "
          f"<= {SEED_TARGET_S:.0f} s   (baseline {base.seed_seconds:.1f} s)")  # fmt: skip
    if scale.seed_seconds > SEED_TARGET_S:
        print(f"  MISS: seed_demo's time per phase: {seed_log}")
    to_profile = {"requests": report_reads(base, scale, figures.reads), "jobs": []}
    if bulk is None:
        print(f"\nbulk: MISS, not measured ({figures.unmeasured})")
        print("stream: MISS, not measured")
    else:
        if report_bulk(base, scale, bulk):
            to_profile["jobs"].append({"name": "bulk set job", "mode": "set", "items": BULK_ITEMS})
        if report_stream(scale, stream):
            to_profile["jobs"].append(
                {"name": "stream job", "mode": "adjust", "items": stream["items"]}
            )
        print(f"  the audit relay had emptied the outbox {figures.relay:.1f} s after the "
              "stream's last change was read")  # fmt: skip
    times = {label: median(r["seconds"] for r in runs) for label, runs in figures.verify.items()}
    print(f"\nverify_ledger (median of {VERIFY_ROUNDS}, in a process already started): "
          + "; ".join(f"{d.label} {times[d.label]:.2f} s "
                      f"({times[d.label] / max(counts[d.label]['level'], 1) * 1e6:.1f} us "
                      "per level)" for d in deployments)
          + f"; {times[scale.label] / times[base.label]:.1f} x baseline (no target)")  # fmt: skip
    print(
        f"\ncaveat: {os.cpu_count()} shared cores run the load, both gunicorns, both "
        "workers, PostgreSQL and Redis together: absolute figures move with whatever else "
        "runs; the ratios against the baseline, measured side by side, move much less"
    )
    return to_profile if to_profile["requests"] or to_profile["jobs"] else {}


def report_reads(base: Deployment, scale: Deployment, reads: dict) -> list[dict]:
    """The reads' table; returns the requests to profile (each MISS)."""
    print(f"\nreads over HTTP, {REQUESTS} requests per read and database in {ROUNDS} rounds, "
          "the two databases alternating request by request; ms from sending the request to "
          "the last byte")  # fmt: skip
    print(f"{'read':<46}{base.label + ' p50':>16}{'p99':>8}{scale.label + ' p50':>19}"
          f"{'p99':>8}{'ratio':>7}  target")  # fmt: skip
    missed = []
    for name, result in reads.items():
        b, s = result[base.label]["seconds"], result[scale.label]["seconds"]
        p50_b, p50_s = median(b), median(s)
        ratio = p50_s / p50_b
        passed = p50_s * 1000 < PAGE_TARGET_MS and ratio <= PAGE_RATIO
        print(f"{name:<46}{ms(p50_b):>16}{ms(percentile(b, 99)):>8}{ms(p50_s):>19}"
              f"{ms(percentile(s, 99)):>8}{ratio:>7.2f}  {verdict(passed)} < "
              f"{PAGE_TARGET_MS:.0f} ms and <= {PAGE_RATIO} x baseline")  # fmt: skip
        if not passed:
            read = next(r for r in ALL_READS if name.startswith(r.name))
            miss = read is CACHE_MISS
            path = level_paths(scale, 1, 99)[0] if miss else read_path(read, 0)
            missed.append(
                {"name": name, "path": path, "user": read.user, "auth": read.auth,
                 "cache_miss": miss}
            )  # fmt: skip
    return missed


def report_bulk(base: Deployment, scale: Deployment, bulk: dict) -> bool:
    """The bulk table; True if the scale database missed the target."""
    print(f"\nbulk job of {BULK_ITEMS:,} items, from sending the POST to reading status "
          f"done (median of {BULK_ROUNDS}; POST s: the request alone; worker s: the job's "
          "created_at to finished_at; relay s: from done until its audit entries are all "
          "relayed, before the next job starts)")  # fmt: skip
    print(f"{'':<51}{'CPU ms per 1,000 items':>24}")
    print(f"{'mode':<8}{'database':<16}{'items/s':>9}{'total s':>9}{'POST s':>8}"
          f"{'worker s':>10}{'relay s':>8}{'worker':>8}{'web':>6}{'db':>6}{'busy':>6}  "
          f"{'items/s per run':<22}target")  # fmt: skip
    missed = False
    for mode in ("set", "adjust"):
        rates = {}
        for deployment in (base, scale):
            runs = [run for run in bulk[mode, deployment.label] if "rate" in run]
            rates[deployment.label] = rate = median(run["rate"] for run in runs)
            target = ""
            if deployment is scale:
                passed = rate >= BULK_TARGET
                missed |= not passed
                target = (f"{verdict(passed)} >= {BULK_TARGET:,} items/s; "
                          f"{rate / rates[base.label]:.2f} x baseline")  # fmt: skip
            per_run = " ".join(f"{run['rate']:.0f}" if "rate" in run else "ERR"
                               for run in bulk[mode, deployment.label])  # fmt: skip
            cpu = {name: median(1e6 * r["cpu"][name] / BULK_ITEMS for r in runs)
                   for name in ("worker", "web", "db")}  # fmt: skip
            busy = median(r["cpu"]["machine"] / r["cpu"]["wall"] / CPUS for r in runs)
            print(f"{mode:<8}{deployment.label:<16}{rate:>9.0f}"
                  f"{median(r['seconds'] for r in runs):>9.2f}"
                  f"{median(r['post_seconds'] for r in runs):>8.2f}"
                  f"{median(job_seconds(r['state']) for r in runs):>10.2f}"
                  f"{median(r['relay_seconds'] for r in runs):>8.2f}"
                  f"{cpu['worker']:>8.0f}{cpu['web']:>6.0f}{cpu['db']:>6.0f}{busy:>6.0%}"
                  f"  {per_run:<22}{target}")  # fmt: skip
    if missed:
        print("  MISS: a bulk set job applied in one process under cProfile, its statements "
              "timed and the slowest EXPLAINed: the profile line below")  # fmt: skip
    return missed


def report_stream(scale: Deployment, stream: dict) -> bool:
    """The stream's figures; True if the lag missed its target."""
    lags, posts = stream["lags"], stream["post"]
    p99 = percentile(lags, 99)
    print(
        f"\nstream: {STREAM_RATE:,} changes/s as {stream['items']}-item adjust jobs for "
        f"{STREAM_SECONDS:g} s (after {STREAM_WARMUP:g} s of warm-up at the same rate) on "
        f"{scale.label}: {stream['jobs']} jobs sent in "
        f"{stream['sent_seconds']:.1f} s ({stream['slip'] * 1000:.0f} ms behind schedule at "
        f"worst), {stream['done']} done, {stream['changes_per_s']:.0f} changes/s applied"
    )
    print(f"  lag from sending a job to its change readable through the API "
          f"({len(lags)} changes read back, {STREAM_SAMPLES} per job): p50 "
          f"{ms(percentile(lags, 50))} ms, p99 {ms(p99)} ms, max "
          f"{ms(max(lags, default=float('nan')))} ms  {verdict(p99 < LAG_TARGET_S)} "
          f"p99 < {LAG_TARGET_S:g} s")  # fmt: skip
    print(f"  with the warm-up's jobs: p50 {ms(percentile(stream['all_lags'], 50))} ms, "
          f"p99 {ms(percentile(stream['all_lags'], 99))} ms")  # fmt: skip
    print(f"  the POST alone: p50 {ms(percentile(posts, 50))} ms, "
          f"p99 {ms(percentile(posts, 99))} ms; the reads measuring the lag: "
          f"{stream['reads_per_s']:.0f} GET/s on the same server, a change read every "
          f"{ms(stream['read_gap'])} ms (p50) until seen: the lag's resolution")  # fmt: skip
    cpu = stream["cpu"]
    cores = {name: seconds / cpu["wall"] for name, seconds in cpu.items()}
    others = cores["machine"] - sum(cores[n] for n in ("worker", "web", "db", "bench"))
    print(f"  CPU while it ran, in cores: worker {cores['worker']:.2f}, web {cores['web']:.2f}, "
          f"PostgreSQL server {cores['db']:.2f}, this bench {cores['bench']:.2f}, anything else "
          f"{others:.2f}; the machine {cores['machine']:.2f} of {CPUS} busy")  # fmt: skip
    if not p99 < LAG_TARGET_S:
        print(f"  MISS: each job's POST time, created_at and finished_at, and read lags: "
              f"{stream['csv']}; one such job under cProfile: the profile line below")  # fmt: skip
    return not p99 < LAG_TARGET_S


def job_seconds(state: dict) -> float:
    """created_at to finished_at of a job body (the worker's share), or NaN."""
    from datetime import datetime

    try:
        created = datetime.fromisoformat(state["created_at"].replace("Z", "+00:00"))
        finished = datetime.fromisoformat(state["finished_at"].replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError, AttributeError):
        return float("nan")
    return (finished - created).total_seconds()


def checks(figures: Figures) -> bool:
    """What must hold for the figures to mean what they say; printed, True if all do."""
    bulk, stream, unmeasured = figures.bulk, figures.stream, figures.unmeasured
    if bulk is None:
        bulk = {("bulk endpoint", "the scale database"): [{"error": unmeasured}]}
        stream = {"all_done": 0, "all_jobs": 1, "unseen": 0, "errors": [unmeasured]}
    bad_jobs = [
        f"{mode} on {label}: {run.get('error') or run['state']}"
        for (mode, label), runs in bulk.items() for run in runs
        if not run.get("ok")
    ]  # fmt: skip
    bad_reads = [f"{name} on {label}: {bad}" for name, result in figures.reads.items()
                 for label, figures in result.items() for bad in figures["bad"]]  # fmt: skip
    ledgers = [f"{label}: {run['output'].strip()}" for label, runs in figures.verify.items()
               for run in runs if not run["ok"]]  # fmt: skip
    results = [
        (not bad_jobs, f"every bulk job done, all {BULK_ITEMS:,} items applied",
         "; ".join(bad_jobs[:3])),
        (stream["all_done"] == stream["all_jobs"] and not stream["unseen"],
         f"every stream job done ({stream['all_done']}/{stream['all_jobs']}, the warm-up's "
         "too), every sampled change "
         f"read back within {SEEN_TIMEOUT:.0f} s ({stream['unseen']} not)",
         "; ".join(stream["errors"])),
        (not bad_reads, "every read answered 200 (a cache miss X-Cache MISS)",
         "; ".join(bad_reads[:3])),
        (not ledgers, "verify_ledger: every level equals the sum of its movements",
         "; ".join(ledgers)),
    ]  # fmt: skip
    print()
    for ok, text, detail in results:
        print(f"check, {text}: {'OK' if ok else 'FAILED ' + detail[:600]}")
    return all(ok for ok, _, _ in results)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if len(sys.argv) >= 3 and sys.argv[1] == "--child":
        child_main(sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else {})
        sys.exit(0)
    sys.exit(main())
