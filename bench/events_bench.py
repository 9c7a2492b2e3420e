"""What the live events cost stock writes, and how soon they arrive (issue 17, point 5):
stock writes per second over HTTP with no subscriber, 1 and 10 webhook subscriptions,
100 open live streams, and 10 subscriptions with 100 streams, side by side in one run;
then the delay from a committed change to its event at a stream client and at a webhook
receiver, at a steady write rate.

    make bench-events       # or: .venv/bin/python bench/events_bench.py (make bench runs it)

Each variant writes to a store of its own, whose subscriptions (to a local receiver,
``events_clients.py receiver``) and streams (``events_clients.py streams``) stay open for
the whole run; the rounds interleave the variants. After every run the bench waits until
every event reached every client, so no run pays for the one before. See bench/README.md.
Exits 1 when an event did not reach a stream client or a subscription, came out of order,
carried a bad signature, or a write was answered other than 200.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
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
    machine_load,
    median,
    percentile,
    pg_args,
    refuse_existing_database,
    require_tools,
    run_wrk,
    scratch_redis,
    session_pids,
    start,
    start_web,
    start_worker,
    verdict,
    web_variables,
)
from events_clients import read_dump
from events_profile import profile_deliveries

from tests.processes import answers_health, free_port, project_env, stop, wait_until

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/inventory_bench_events"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "")  # empty: a private redis-server
DURATION = float(os.environ.get("BENCH_EVENTS_DURATION", "3"))  # seconds per wrk run
ROUNDS = int(os.environ.get("BENCH_EVENTS_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_EVENTS_CONNECTIONS", "32"))
STREAMS = int(os.environ.get("BENCH_EVENTS_STREAMS", "100"))
SKUS = int(os.environ.get("BENCH_EVENTS_SKUS", "8"))
RATE = float(os.environ.get("BENCH_EVENTS_RATE", "10"))  # steady writes/s for the delay
STEADY_SECONDS = float(os.environ.get("BENCH_EVENTS_STEADY_SECONDS", "10"))  # per store
DRAIN_TIMEOUT = float(os.environ.get("BENCH_EVENTS_DRAIN_TIMEOUT", "180"))
WARMUP = 1.0
KEEP_LOGS = os.environ.get("BENCH_EVENTS_KEEP_LOGS", "") not in ("", "0")  # else only on failure
PROFILE_WRITES = int(os.environ.get("BENCH_EVENTS_PROFILE_WRITES", "100"))  # 0: no profile
# The niceness of the listeners' side: the Celery worker, the events process, the
# receiver and the stream holder. A deployment runs them on machines of their own; on
# these 2 shared cores 19 lets the writes have the CPU first, 0 makes everything share it.
LISTENER_NICE = int(os.environ.get("BENCH_EVENTS_LISTENER_NICE", "19"))
# Empty: every process may run on every CPU (shared). "1": the listeners' side runs on
# CPU 1 only and gunicorn and wrk on the others, as when the worker and the events
# process have machines of their own; PostgreSQL and Redis, which both sides use, run
# anywhere. The ratio then says what the listeners cost the writes through what they
# share (the database, Redis, the machine's memory), not through their own CPU.
LISTENER_CPUS = {int(cpu) for cpu in os.environ.get("BENCH_EVENTS_LISTENER_CPUS", "").split(",")
                 if cpu.strip()}  # fmt: skip
WRITE_CPUS = os.sched_getaffinity(0) - LISTENER_CPUS
CLIENTS = str(ROOT / "bench" / "events_clients.py")
WRITE_RATIO_GOAL, DELAY_GOAL_S = 0.9, 1.0


@dataclass(frozen=True)
class Variant:
    name: str
    store: str
    webhooks: int
    streams: int


VARIANTS = [
    Variant("none", "bench-events-none", 0, 0),
    Variant("1 webhook", "bench-events-hook1", 1, 0),
    Variant("10 webhooks", "bench-events-hook10", 10, 0),
    Variant(f"{STREAMS} streams", "bench-events-streams", 0, STREAMS),
    Variant(f"10 webhooks + {STREAMS} streams", "bench-events-both", 10, STREAMS),
]
BASELINE = VARIANTS[0]
# The delay is measured at a steady rate to these stores, one after the other.
STEADY = [VARIANTS[1], VARIANTS[-1]]


def sku(number: int) -> str:
    return f"EVENTS-{number:02d}"


def receive_path(store: str, sku_: str) -> str:
    return f"/api/v1/stores/{store}/stock/{sku_}/receive/"


def hook_path(store: str, number: int) -> str:
    return f"/hook/{store}/{number}"


# --- Data (this process, on the project's settings) -----------------------------------------


def seed(receiver_port: int) -> tuple[str, dict[str, str]]:
    """A store per variant, each with SKUS levels (received once: their first events), a
    manager of them all with a token, and each variant's webhook subscriptions (every
    event type) to the receiver, one path each. Returns the token and {path: secret}."""
    from accounts.models import User
    from accounts.services import token_for_user
    from catalog.models import Product
    from events.webhooks.services import subscription_create
    from stock.services import stock_receive
    from stores.models import Role
    from stores.services import membership_grant, store_create

    admin = User.objects.create_superuser("bench-admin")
    manager = User.objects.create_user("bench-manager")
    products = [
        Product.objects.create(sku=sku(n), name=f"Events {n}", price="1.00") for n in range(SKUS)
    ]
    secrets = {}
    for variant in VARIANTS:
        store = store_create(code=variant.store, name=variant.name, actor=admin)
        membership_grant(store=store, user=manager, role=Role.MANAGER, actor=admin)
        for product in products:
            stock_receive(store=store, product=product, quantity=1, actor=admin)
        for number in range(variant.webhooks):
            path = hook_path(variant.store, number)
            subscription = subscription_create(
                store=store, url=f"http://127.0.0.1:{receiver_port}{path}", event_types=[],
                actor=admin,
            )  # fmt: skip
            secrets[path] = subscription.secret
    return token_for_user(user=manager, actor=admin).key, secrets


def last_seqs() -> dict[str, int]:
    """Each store's last event seq (0: none yet)."""
    from events.models import StoreEventSequence

    rows = StoreEventSequence.objects.values_list("store__code", "last_seq")
    return {variant.store: 0 for variant in VARIANTS} | dict(rows)


def audit_relayed() -> bool:
    from audit.models import AuditOutboxEntry

    return not AuditOutboxEntry.objects.exists()


def event_times() -> dict[str, dict[int, tuple[float, str, int]]]:
    """Per store, each event's (at as a Unix time, sku, version) by seq."""
    from events.models import StockEvent

    times: dict[str, dict[int, tuple[float, str, int]]] = {}
    rows = StockEvent.objects.values_list("store__code", "seq", "at", "product__sku", "version")
    for store, seq, at, sku_, version in rows.iterator(chunk_size=5000):
        times.setdefault(store, {})[seq] = (at.timestamp(), sku_, version)
    return times


def log_checks() -> list[tuple[bool, str]]:
    """Each store's events are numbered 1..N with no gap, one per movement besides those
    of reorder point changes (no movement), and every level is the sum of its
    movements."""
    from django.db import connection

    from events.models import StockEvent
    from stock.models import Movement, StockLevel

    events, movements = StockEvent._meta.db_table, Movement._meta.db_table
    levels = StockLevel._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*) FILTER (WHERE e.events <> e.top OR e.moved <> m.movements)
              FROM (SELECT store_id, count(*) AS events, max(seq) AS top,
                           count(movement_id) AS moved
                      FROM {events} GROUP BY 1) e
              JOIN (SELECT store_id, count(*) AS movements FROM {movements} GROUP BY 1) m
                   USING (store_id)
            """
        )
        (gapped,) = cursor.fetchone()
        cursor.execute(
            f"""
            SELECT count(*) FROM {levels} l
              JOIN (SELECT store_id, product_id, sum(delta_on_hand) AS on_hand
                      FROM {movements} GROUP BY 1, 2) m USING (store_id, product_id)
             WHERE l.on_hand <> m.on_hand
            """
        )
        (off_ledger,) = cursor.fetchone()
    return [
        (gapped == 0, f"stores whose events are not 1..N, one per movement: {gapped}"),
        (off_ledger == 0, f"levels whose on_hand is not the sum of their movements: {off_ledger}"),
    ]


# --- The clients --------------------------------------------------------------------------


class Clients:
    """The webhook receiver and the stream holder (``events_clients.py``)."""

    def __init__(self, work: Path, env: dict):
        self.work, self.env = work, env
        self.receiver_port = free_port()
        self.receiver = self.holder = None

    def start_receiver(self, secrets: dict[str, str]) -> None:
        secrets_file = self.work / "secrets.json"
        secrets_file.write_text(json.dumps(secrets))
        self.receiver = self._start(
            ["receiver", "--port", str(self.receiver_port), "--secrets", str(secrets_file)],
            stdin=subprocess.DEVNULL,
        )

    def start_streams(self, events_port: int, token: str) -> None:
        stores = [f"--store={v.store}={v.streams}" for v in VARIANTS if v.streams]
        self.holder = self._start(
            ["streams", "--port", str(events_port), "--token", token, *stores],
            stdin=subprocess.PIPE,
        )

    def _start(self, args: list[str], stdin) -> subprocess.Popen:
        child = subprocess.Popen(
            [sys.executable, CLIENTS, *args], cwd=ROOT, env=self.env, stdin=stdin,
            stdout=subprocess.PIPE, stderr=open(self.work / f"{args[0]}.log", "a"), text=True,
            start_new_session=True,
        )  # fmt: skip
        if child.stdout.readline().strip() != "READY":
            raise SystemExit(f"events_clients.py {args[0]} did not start: "
                             f"{(self.work / f'{args[0]}.log').read_text()[-2000:]}")  # fmt: skip
        return child

    def pids(self) -> list[int]:
        return [child.pid for child in (self.receiver, self.holder) if child]

    def receiver_get(self, path: str) -> dict:
        url = f"http://127.0.0.1:{self.receiver_port}{path}"
        with urllib.request.urlopen(url, timeout=60) as answer:
            return json.load(answer)

    def holder_ask(self, command: str) -> str:
        self.holder.stdin.write(command + "\n")
        self.holder.stdin.flush()
        return self.holder.stdout.readline().strip()

    def stopped(self) -> None:
        for child in (self.receiver, self.holder):
            if child is not None:
                stop(child, timeout=5)


def drained(clients: Clients, first_seqs: dict[str, int], variant: Variant) -> bool:
    """Every event of the variant's store reached each of its streams and subscriptions,
    and the worker relayed the audit outbox."""
    last = last_seqs()[variant.store]
    if variant.streams and json.loads(clients.holder_ask("state"))[variant.store] < last:
        return False
    if variant.webhooks:
        counts = clients.receiver_get("/_state")["counts"]
        expected = last - first_seqs[variant.store]
        if any(counts[hook_path(variant.store, n)] < expected for n in range(variant.webhooks)):
            return False
    return audit_relayed()


def wait_drained(clients: Clients, first_seqs: dict[str, int], variant: Variant) -> float:
    started = time.monotonic()
    if not wait_until(lambda: drained(clients, first_seqs, variant), timeout=DRAIN_TIMEOUT,
                      interval=0.2):  # fmt: skip
        raise Incomplete(f"{variant.name}: events still missing {DRAIN_TIMEOUT:.0f} s after "
                         f"the writes ended")  # fmt: skip
    return time.monotonic() - started


class Incomplete(Exception):
    pass


# --- Delays -------------------------------------------------------------------------------


def delays(times: dict[str, dict[int, tuple]], streams, arrivals: dict[str, dict[str, float]],
           store: str, seqs: range, since: dict[int, float] | None = None) -> dict:  # fmt: skip
    """Seconds from each event of ``store`` numbered ``seqs`` to its arrival at each of the
    store's stream clients and webhook paths: from its ``at`` (or from ``since[seq]``).
    A missing arrival is counted, not timed."""
    origin = since or {seq: times[store][seq][0] for seq in seqs}
    stream_delays, hook_delays, missing = [], [], 0
    for header, arrived in streams:
        if header["store"] != store:
            continue
        for seq in seqs:
            if seq in origin:
                if seq < len(arrived) and arrived[seq]:
                    stream_delays.append(arrived[seq] - origin[seq])
                else:
                    missing += 1
    for path, received in arrivals.items():
        if path.startswith(f"/hook/{store}/"):
            for seq in seqs:
                if seq in origin:
                    if (at := received.get(f"{store}:{seq}")) is not None:
                        hook_delays.append(at - origin[seq])
                    else:
                        missing += 1
    return {"stream": stream_delays, "webhook": hook_delays, "missing": missing}


def lower_priority(pids: list[int], nice: int) -> str:
    """Every thread of these processes, and their sessions, run at ``nice``; answers
    how, for the report.

    A process's niceness only weighs it against the processes of its own session where
    the kernel groups sessions (``sched_autogroup_enabled``, the default on most Linux
    machines, this one included): each session's group gets an equal share of a busy CPU
    whatever the niceness inside it, so a niced worker in a session of its own took as
    much CPU as gunicorn. The listeners each run in a session of their own, so the
    niceness goes on their sessions' groups too (``/proc/<pid>/autogroup``), once per
    group. Threads and processes started later inherit both."""
    alive = for_each_thread(pids, lambda thread: os.setpriority(os.PRIO_PROCESS, thread, nice))
    grouping = Path("/proc/sys/kernel/sched_autogroup_enabled")
    if not grouping.exists() or grouping.read_text().strip() != "1":
        return f"nice {nice} (the kernel does not group sessions)"
    groups = {}  # a group's name (/autogroup-N): a process of it
    for pid in alive:
        try:
            groups.setdefault(Path(f"/proc/{pid}/autogroup").read_text().split()[0], pid)
        except FileNotFoundError:
            continue
    refused = sum(not nice_group(pid, nice) for pid in groups.values())
    if not refused:
        return f"nice {nice}, their sessions' groups too"
    return (f"nice {nice} ({refused} of {len(groups)} of their sessions' groups refused it: "
            f"there it weighs little)")  # fmt: skip


def nice_group(pid: int, nice: int) -> bool:
    """Set the niceness of ``pid``'s session group; whether it took."""
    group = Path(f"/proc/{pid}/autogroup")
    for _ in range(3):
        try:
            group.write_text(str(nice))
        except BlockingIOError:  # unprivileged: one change per 100 ms
            time.sleep(0.11)
            continue
        except OSError:
            return False
        return group.read_text().split()[-1] == str(nice)
    return False


def pin(pids: list[int], cpus: set[int]) -> None:
    """Every thread of these processes runs on ``cpus`` only, and so what they start."""
    for_each_thread(pids, lambda thread: os.sched_setaffinity(thread, cpus))


def for_each_thread(pids: list[int], change) -> list[int]:
    """Call ``change`` with each thread id of these processes, skipping processes and
    threads that ended meanwhile; returns the processes still there."""
    alive = []
    for pid in pids:
        try:
            threads = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        alive.append(pid)
        for thread in threads:
            try:
                change(int(thread))
            except ProcessLookupError:
                pass
    return alive


def layout() -> str:
    if not LISTENER_CPUS:
        return "every process on every CPU (shared)"
    return (f"the listeners' side on CPU {','.join(map(str, sorted(LISTENER_CPUS)))}, gunicorn "
            f"and wrk on CPU {','.join(map(str, sorted(WRITE_CPUS)))}, PostgreSQL and Redis "
            f"on any")  # fmt: skip


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return (f"p50 {1000 * percentile(values, 50):.0f} ms, p99 {1000 * percentile(values, 99):.0f}"
            f" ms, max {1000 * max(values):.0f} ms")  # fmt: skip


# --- Run ---------------------------------------------------------------------------------


def main() -> int:
    started = time.monotonic()
    require_tools("wrk", "createdb", "dropdb", "psql")
    cpus = os.sched_getaffinity(0)
    if LISTENER_CPUS and (not WRITE_CPUS or not LISTENER_CPUS <= cpus):
        print(f"split layout skipped: BENCH_EVENTS_LISTENER_CPUS={sorted(LISTENER_CPUS)} must "
              f"name some, not all, of the CPUs this process may use, {sorted(cpus)}")  # fmt: skip
        return 0
    refuse_existing_database(DATABASE_URL)
    work = Path(tempfile.mkdtemp(prefix="events-bench-"))
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    redis_server, redis_url, redis_client = scratch_redis(REDIS_URL, work)
    web_port, events_port = free_port(), free_port()
    variables = deployed_variables(
        database_url=DATABASE_URL, redis_url=redis_url, cache_prefix=prefix, secret="events-bench"
    )
    # The receiver listens on 127.0.0.1, which webhooks refuse unless told.
    variables["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "true"
    env = project_env(**variables)
    clients = Clients(work, project_env())
    server = worker = events = None
    created, ok = False, False
    try:
        checked(["createdb", *pg_args(DATABASE_URL)[0], pg_args(DATABASE_URL)[1]], env, "createdb")
        created = True
        checked(["bin/run", "migrate"], env, "bin/run migrate", timeout=180)
        os.environ.update(variables)  # this process seeds and checks the same database
        import django

        django.setup()
        token, secrets = seed(clients.receiver_port)
        first_seqs = last_seqs()
        if min(first_seqs.values()) != SKUS:
            raise SystemExit(
                f"{SKUS} receipts per store numbered {first_seqs} events: the stock services "
                "do not write the event log this bench measures"
            )
        clients.start_receiver(secrets)
        worker = start_worker(env, work / "worker.log")
        server = start_web({**env, **web_variables(web_port, work)}, work / "web.log")
        events = start(["events"], {**env, "PORT": str(events_port), "BIND_ADDRESS": "127.0.0.1"},
                       work / "events.log")  # fmt: skip
        if not wait_until(lambda: events.poll() is not None or answers_health(events_port),
                          timeout=60, interval=0.2) or events.poll() is not None:  # fmt: skip
            raise SystemExit(f"bin/run events did not start:\n{(work / 'events.log').read_text()}")
        opening = time.monotonic()
        clients.start_streams(events_port, token)
        opened_s = time.monotonic() - opening
        listeners = [*session_pids(worker.pid), *session_pids(events.pid), *clients.pids()]
        priority = lower_priority(listeners, LISTENER_NICE)
        if LISTENER_CPUS:
            pin(listeners, LISTENER_CPUS)
            pin([os.getpid(), *session_pids(server.pid)], WRITE_CPUS)  # wrk: the bench's child
        log(f"{len(VARIANTS)} stores of {SKUS} levels; {sum(v.webhooks for v in VARIANTS)} "
            f"subscriptions, {sum(v.streams for v in VARIANTS)} open streams (all answered in "
            f"{opened_s:.1f} s); bin/run web "
            f":{web_port}, bin/run events :{events_port}, bin/run worker; machine load "
            f"{machine_load()}")  # fmt: skip
        results = measure_writes(web_port, token, work, server, worker, events, clients,
                                 first_seqs)  # fmt: skip
        steady = [measure_steady(web_port, token, clients, first_seqs, v) for v in STEADY]
        streams_file = work / "streams.dump"
        if clients.holder_ask(f"dump {streams_file}") != "DUMPED":
            raise SystemExit("the stream holder did not dump its arrivals")
        streams = read_dump(str(streams_file))
        arrivals = clients.receiver_get("/_arrivals")
        receiver_state = clients.receiver_get("/_state")
        times = event_times()
        for process in (server, events, worker):
            stop(process)
        server = events = worker = None
        profile = profile_deliveries(VARIANTS[2].store, PROFILE_WRITES) if PROFILE_WRITES else []
        checks = log_checks()
        checks += delivery_checks(times, streams, arrivals, receiver_state, first_seqs)
        unexpected = sum(run["unexpected"] + run["socket_errors"]
                         for runs in results.values() for run in runs)  # fmt: skip
        checks.append((unexpected == 0, f"writes answered other than 200 (or socket errors) in "
                                        f"wrk runs: {unexpected}"))  # fmt: skip
        bad_steady = [w for run in steady for w in run["writes"] if w[4] != 200]
        checks.append((not bad_steady, f"steady writes answered other than 200: {len(bad_steady)}"))
        report(results, steady, times, streams, arrivals, priority)
        for line in profile:
            print(line)
        for passed, text in checks:
            print(f"check, {text}: {'OK' if passed else 'FAILED'}")
        ok = all(passed for passed, _ in checks)
        if not ok:
            print(f"CHECK FAILED; logs in {work}")
        print(f"the run took {time.monotonic() - started:.0f}s")
    except Incomplete as failure:
        print(f"CHECK FAILED: {failure}; logs in {work}")
    finally:
        for process in (server, events, worker):
            if process is not None:
                stop(process)
        clients.stopped()
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
        if ok and not KEEP_LOGS:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"the processes' logs are in {work}")
    return 0 if ok else 1


def measure_writes(port, token, work, server, worker, events, clients, first_seqs) -> dict:
    """Every variant's wrk runs, rounds interleaved (the order rotated each round), each
    followed by the wait until its events arrived everywhere."""
    from django.db import connections

    script = work / "bench.lua"
    script.write_text(WRK_SCRIPT)
    groups = {
        "web": lambda: session_pids(server.pid),
        "worker": lambda: session_pids(worker.pid),
        "events": lambda: session_pids(events.pid),
        "db": database_backends,
        "clients": clients.pids,
    }

    def run(variant: Variant, seconds: float) -> dict:
        before = {name: cpu_by_pid(pids()) for name, pids in groups.items()}
        seqs_before = last_seqs()[variant.store]
        connections.close_all()
        result = run_wrk(
            f"http://127.0.0.1:{port}", script, seconds=seconds, connections=CONNECTIONS,
            work=work, method="POST", token=token, body='{"quantity": 1}', expected="200",
            paths=[receive_path(variant.store, sku(n)) for n in range(SKUS)],
        )  # fmt: skip
        result["drain_s"] = wait_drained(clients, first_seqs, variant)
        result["cpu"] = {
            name: cpu_used_since(before[name], pids()) for name, pids in groups.items()
        }
        result["seqs"] = (seqs_before + 1, last_seqs()[variant.store] + 1)
        result["writes"] = result["seqs"][1] - result["seqs"][0]
        connections.close_all()
        return result

    for variant in VARIANTS:  # warm-up: imports, connections, lookups, every path once
        run(variant, WARMUP)
    results = {variant.name: [] for variant in VARIANTS}
    for round_ in range(ROUNDS):
        shift = round_ * 2 % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            result = run(variant, DURATION)
            results[variant.name].append(result)
        log(f"round {round_ + 1}/{ROUNDS}: " + ", ".join(
            f"{name} {runs[-1]['rps']:.0f}/s" for name, runs in results.items()))  # fmt: skip
    return results


def measure_steady(port: int, token: str, clients: Clients, first_seqs: dict,
                   variant: Variant) -> dict:  # fmt: skip
    """RATE writes/s for STEADY_SECONDS to the variant's store, each timed by the writer
    (sent on schedule whatever the earlier ones take); then the wait until every event
    arrived."""
    paths = [receive_path(variant.store, sku(n)) for n in range(SKUS)]
    seq_before = last_seqs()[variant.store]
    command = [sys.executable, CLIENTS, "writer", "--port", str(port), "--token", token,
               "--rate", str(RATE), "--seconds", str(STEADY_SECONDS), *paths]  # fmt: skip
    output = checked(command, clients.env, "the steady writer", timeout=STEADY_SECONDS + 120)
    result = json.loads(output.splitlines()[-1])
    result["drain_s"] = wait_drained(clients, first_seqs, variant)
    result["seqs"] = (seq_before + 1, last_seqs()[variant.store] + 1)
    result["variant"] = variant
    log(f"steady writes: {RATE:g}/s for {STEADY_SECONDS:g} s to {variant.name}; every event "
        f"arrived {result['drain_s']:.1f} s after the last write")  # fmt: skip
    return result


def delivery_checks(times, streams, arrivals, receiver_state, first_seqs) -> list:
    """Every event of each store reached each of its stream clients, in order, and each
    of its subscriptions (since it was made), signed right."""
    missing_streams = 0
    disorders = sum(header["disorders"] for header, _ in streams)
    reconnects = sum(header["reconnects"] for header, _ in streams)
    for header, arrived in streams:
        last = max(times.get(header["store"], {0: None}))
        missing_streams += sum(
            1 for seq in range(1, last + 1) if seq >= len(arrived) or not arrived[seq]
        )
    missing_hooks = 0
    for variant in VARIANTS:
        last = max(times[variant.store])
        for number in range(variant.webhooks):
            received = arrivals[hook_path(variant.store, number)]
            missing_hooks += sum(
                1 for seq in range(first_seqs[variant.store] + 1, last + 1)
                if f"{variant.store}:{seq}" not in received
            )  # fmt: skip
    streams_held = sum(v.streams for v in VARIANTS)
    return [
        (len(streams) == streams_held and missing_streams == 0 and disorders == 0,
         f"{streams_held} streams, every event of their store at every one, in seq order: "
         f"{missing_streams} missing, {disorders} out of order ({reconnects} reconnects)"),
        (missing_hooks == 0 and not receiver_state["refused"],
         f"every event at every subscription, signed right: {missing_hooks} missing, "
         f"{len(receiver_state['refused'])} refused {receiver_state['refused'][:3]} "
         f"({receiver_state['repeats']} repeats, deduplicated by webhook-id)"),
    ]  # fmt: skip


# --- Report ------------------------------------------------------------------------------


def report(results: dict, steady: dict, times, streams, arrivals, priority: str) -> None:
    print()
    print(f"Stock writes with live events: POST .../stock/<sku>/receive/ over {SKUS} SKUs of one "
          f"store per variant, wrk -t1 -c{CONNECTIONS}, {DURATION:g} s per run, medians of "
          f"{ROUNDS} rounds (variants interleaved); bin/run web, events and worker with their "
          f"defaults, the worker, the events process and the clients at {priority}; "
          f"{layout()}; machine load {machine_load()}")  # fmt: skip
    print(f"{'variant':<29}{'writes/s':>9}{'x none':>7}{'p99 ms':>8}{'web':>7}{'worker':>8}"
          f"{'events':>8}{'db':>6}{'clients':>8}{'drain s':>8}  {'stream delay p50/p99':>21}"
          f"  {'webhook delay p50/p99':>22}")  # fmt: skip
    baseline = median(run["rps"] for run in results[BASELINE.name])
    for variant in VARIANTS:
        runs = results[variant.name]
        rps = median(run["rps"] for run in runs)
        cpu = {name: median(1000 * run["cpu"][name] / max(run["writes"], 1) for run in runs)
               for name in runs[0]["cpu"]}  # fmt: skip
        stream_delays, hook_delays = [], []
        for run in runs:
            found = delays(times, streams, arrivals, variant.store, range(*run["seqs"]))
            stream_delays += found["stream"]
            hook_delays += found["webhook"]
        ratio = rps / baseline
        goal = "" if variant is BASELINE else f"  {verdict(ratio >= WRITE_RATIO_GOAL)} >= 0.9"
        print(f"{variant.name:<29}{rps:>9.0f}{ratio:>7.2f}"
              f"{median(run['p99_us'] for run in runs) / 1000:>8.1f}"
              + "".join(f"{cpu[name]:>{w}.2f}" for name, w in
                        (("web", 7), ("worker", 8), ("events", 8), ("db", 6), ("clients", 8)))
              + f"{median(run['drain_s'] for run in runs):>8.1f}  {pair(stream_delays):>21}"
              f"  {pair(hook_delays):>22}{goal}")  # fmt: skip
    print("per run writes/s: " + "; ".join(
        f"{name} " + " ".join(f"{run['rps']:.0f}" for run in runs)
        for name, runs in results.items()))  # fmt: skip
    nones = results[BASELINE.name]
    by_round = {
        name: [run["rps"] / none["rps"] for run, none in zip(runs, nones, strict=True)]
        for name, runs in results.items() if name != BASELINE.name
    }  # fmt: skip
    print("x none by round (each run against the same round's none), how far one run's "
          "ratio strays: " + "; ".join(
              f"{name} {min(ratios):.2f}-{max(ratios):.2f} (median {median(ratios):.2f})"
              for name, ratios in by_round.items()))  # fmt: skip
    per_delivery = {
        v.name: median(1000 * run["cpu"]["worker"] / max(run["writes"] * v.webhooks, 1)
                       for run in results[v.name])
        for v in VARIANTS if v.webhooks
    }  # fmt: skip
    print("worker CPU per webhook delivery (the audit relay's share included): "
          + ", ".join(f"{name} {ms:.2f} ms" for name, ms in per_delivery.items()))  # fmt: skip
    print(
        "web, worker, events, db, clients: CPU ms per write (user + system, from /proc) of "
        "gunicorn, the Celery worker, the events process, the bench database's PostgreSQL "
        "backends, and the receiver and stream holder, from the run's start until every "
        "event had arrived; drain s: from the end of the writes until then; delays: from "
        "each event's at to its arrival, every client and subscription, the rounds pooled"
    )
    for run in steady:
        steady_report(run, times, streams, arrivals)
    print(
        "at: the time the stock service took before its statement, so a delay from it "
        "includes the statement and the commit (an upper bound of the delay from the "
        "commit); the write's answer comes after the commit (a lower bound)"
    )
    if LISTENER_CPUS:
        print(
            f"caveat: one machine of {os.cpu_count()} cores, split: the writes have "
            f"{len(WRITE_CPUS)} of them (and their share of PostgreSQL's), so every variant "
            "writes fewer per second than on shared cores; the ratio is what the listeners "
            "take from the writes through the database, Redis and the machine they share"
        )
    else:
        print(
            f"caveat: {os.cpu_count()} shared cores run wrk, gunicorn, the events process, the "
            "Celery worker, PostgreSQL, Redis, the receiver and the stream holder together: "
            "read the ratios and the CPU per write"
        )


def steady_report(run: dict, times, streams, arrivals) -> None:
    variant, seqs = run["variant"], range(*run["seqs"])
    found = delays(times, streams, arrivals, variant.store, seqs)
    answered = {(sku_, version): answered for sku_, version, _, answered, _ in run["writes"]}
    since = {}
    for seq in seqs:
        _, sku_, version = times[variant.store][seq]
        if (sku_, version) in answered:
            since[seq] = answered[(sku_, version)]
    from_answer = delays(times, streams, arrivals, variant.store, seqs, since)
    write_s = [answered_ - sent for _, _, sent, answered_, _ in run["writes"]]
    print()
    print(
        f"Delay at a steady {RATE:g} writes/s for {STEADY_SECONDS:g} s to the store with "
        f"{variant.name} ({len(write_s)} writes, each answered in {spread(write_s)}; the "
        f"last event arrived everywhere {run['drain_s']:.1f} s after the last write):"
    )
    for kind, label in (("stream", "stream clients"), ("webhook", "webhook receivers")):
        if found[kind]:
            p99 = percentile(found[kind], 99)
            print(
                f"  {label:<17} from at: {spread(found[kind])}  {verdict(p99 < DELAY_GOAL_S)}"
                f" p99 < 1 s; from the write's answer: {spread(from_answer[kind])}"
            )


def pair(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{1000 * percentile(values, 50):.0f} / {1000 * percentile(values, 99):.0f} ms"


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
