"""A flash sale over HTTP, with the flash-sale gate on and off side by side in one run:
``BENCH_FLASH_BUYERS`` (10,000) buyers of one unit each for ``BENCH_FLASH_UNITS`` (500)
units, served as deployed.

    make bench-flash        # or: .venv/bin/python bench/flash_bench.py (make bench runs it)

Each round sells a fresh level; the rounds alternate gate on and off (on, off, off, on,
...). A load generator in its own process (this script with ``--buyers``) sends the
buyers over ``BENCH_FLASH_CONNECTIONS`` (32) connections and times every request. When it
has the last unit's sale it says so, and this process reads the counters then and at the
end: PostgreSQL's ``pg_stat_statements`` (a private cluster, see ``PostgresCluster``),
Redis's ``INFO commandstats`` (a private redis-server), the CPU of gunicorn and of
PostgreSQL. So the sold-out answers' costs are those of the rest of the sale. Exits 1
when a round sold other than exactly its units (the ledger, the answers) or answered
anything but 2xx and 409.
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import (
    ROOT,
    PostgresCluster,
    checked,
    cpu_by_pid,
    deployed_variables,
    log,
    machine_load,
    median,
    percentile,
    postgres_server_cpu,
    scratch_redis,
    session_pids,
    sql_rows,
    start_web,
    start_worker,
    web_variables,
)

BUYERS = int(os.environ.get("BENCH_FLASH_BUYERS", "10000"))
UNITS = int(os.environ.get("BENCH_FLASH_UNITS", "500"))
ROUNDS = int(os.environ.get("BENCH_FLASH_ROUNDS", "3"))  # per variant
CONNECTIONS = int(os.environ.get("BENCH_FLASH_CONNECTIONS", "32"))
DATABASE = os.environ.get("BENCH_FLASH_DATABASE", "inventory_bench_flash")
WARMUP_BUYERS, WARMUP_UNITS = 400, 40
STORE = "bench-flash"
# The worker connects as a role of its own, so that pg_stat_statements (per role) tells
# the statements it runs (relaying the sales' audit entries) from the web's.
WORKER_ROLE = "flash_bench_worker"
SOLD_OUT_LINE = "SOLD-OUT"
RESULT_LINE = "BUYERS-RESULT "
LOAD_GENERATOR = "--load-generator"  # this script as the load generator
# Round order: ABBA, so that neither variant always runs first or on a warmer machine.
ORDER = ("on", "off", "off", "on")
# Commands the project's gate scripts run once per call on a sold-out level (tokens.py):
# the admission's HMGET, the registry read's SMEMBERS. No other script runs them.
GATE_SCRIPT_COMMANDS = ("hmget", "smembers")


def purchase_path(sku: str) -> str:
    return f"/api/v1/stores/{STORE}/stock/{sku}/purchase/"


# --- The load generator (its own process) -----------------------------------------------


async def send_buyers(port: int, path: str, token: str, buyers: int, connections: int,
                      units: int) -> dict:  # fmt: skip
    """``buyers`` purchases of one unit, ``connections`` at a time, each on a new
    connection (gunicorn's sync workers close every one); prints SOLD_OUT_LINE on the
    ``units``-th sale. Returns the figures of the sale."""
    body = b'{"quantity": 1}'
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    remaining = iter(range(buyers))
    answers: list[tuple[float, float, int]] = []  # sent, answered, status
    sold_out_at = None

    async def buyer():
        nonlocal sold_out_at
        for _ in remaining:  # shared: each buyer sent once, by whichever is free
            sent = time.perf_counter()
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                response = await reader.read()  # until gunicorn closes the connection
                writer.close()
                status = int(response[9:12])
            except (OSError, ValueError):
                status = 0
            answered = time.perf_counter()
            answers.append((sent, answered, status))
            if 200 <= status < 300 and sold_out_at is None:
                if sum(1 for _, _, code in answers if 200 <= code < 300) == units:
                    sold_out_at = answered
                    print(SOLD_OUT_LINE, flush=True)

    await asyncio.gather(*(buyer() for _ in range(connections)))
    first_sent = min(sent for sent, _, _ in answers)
    last = max(answered for _, answered, _ in answers)
    statuses: dict[int, int] = {}
    for _, _, status in answers:
        statuses[status] = statuses.get(status, 0) + 1
    sales = [answered - sent for sent, answered, status in answers if 200 <= status < 300]
    if sold_out_at is None:
        return {"statuses": statuses, "sold_out": False}
    tail = [answered - sent for sent, answered, status in answers
            if status == 409 and answered > sold_out_at]  # fmt: skip
    return {
        "statuses": statuses,
        "sold_out": True,
        "requests": len(answers),
        "cpu_s": time.process_time(),
        "sell_out_s": sold_out_at - first_sent,
        "tail_answers": len(tail),
        "tail_s": last - sold_out_at,
        "sold_out_p50_ms": 1000 * percentile(tail, 50),
        "sold_out_p99_ms": 1000 * percentile(tail, 99),
        "sale_p99_ms": 1000 * percentile(sales, 99),
    }


def buyers_main(args: list[str]) -> None:
    parser = argparse.ArgumentParser()
    for name in ("port", "buyers", "connections", "units"):
        parser.add_argument(f"--{name}", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--token", required=True)
    options = parser.parse_args(args)
    sale = send_buyers(options.port, options.path, options.token, options.buyers,
                       options.connections, options.units)  # fmt: skip
    result = asyncio.run(sale)
    print(RESULT_LINE + json.dumps(result), flush=True)


# --- Data and gates (this process, on the project's settings) -----------------------------


def seed(skus_on: list[str], skus_off: list[str]) -> str:
    """One store, a clerk with a token (every buyer sends it: the token's lookup is the
    same for all, so the answers differ by the sale alone); a level of UNITS per round,
    each round's own, and the gate on for the ``skus_on``. Returns the token."""
    from accounts.models import User
    from accounts.services import token_for_user
    from catalog.models import Product
    from stock.flash_gate.services import gate_switch, gates_reconcile
    from stock.services import stock_receive
    from stores.models import Role
    from stores.services import membership_grant, store_create

    admin = User.objects.create_superuser("bench-admin")
    store = store_create(code=STORE, name="Bench flash sale", actor=admin)
    clerk = User.objects.create_user("bench-clerk")
    membership_grant(store=store, user=clerk, role=Role.CLERK, actor=admin)
    for sku in [*skus_on, *skus_off]:
        product = Product.objects.create(sku=sku, name=f"Flash {sku}", price="1.00")
        units = WARMUP_UNITS if sku.startswith("WARM") else UNITS
        stock_receive(store=store, product=product, quantity=units, actor=admin)
        if sku in skus_on:
            gate_switch(store=store, product=product, enabled=True, actor=admin)
    gates_reconcile()  # every gate seeded, and Redis marked so (no process asks again)
    return token_for_user(user=clerk, actor=admin).key


def check_round(sku: str, units: int, gated: bool, sales_answered: int) -> list[str]:
    """What went wrong with the round's level (empty: nothing): it sold exactly
    ``units`` (its ledger), each sale answered, on_hand the sum of its movements; gated,
    Redis admitted exactly the sales and refunded none."""
    from django.db.models import Count, Sum

    from stock.flash_gate.services import gate_state
    from stock.models import Movement, MovementKind, StockLevel

    level = StockLevel.objects.select_related("store", "product").get(product__sku=sku)
    movements = Movement.objects.filter(store=level.store, product=level.product)
    sales = movements.filter(kind=MovementKind.SALE).aggregate(
        count=Count("id"), units=Sum("delta_on_hand")
    )
    problems = []
    if sales["count"] != units or -(sales["units"] or 0) != units:
        problems.append(f"{sku}: {sales['count']} sales of {-(sales['units'] or 0)} units, "
                        f"not {units}")  # fmt: skip
    if sales_answered != units:
        problems.append(f"{sku}: {sales_answered} purchases answered 2xx, not {units}")
    total = movements.aggregate(on_hand=Sum("delta_on_hand"))["on_hand"]
    if level.on_hand != 0 or level.reserved != 0 or total != level.on_hand:
        problems.append(f"{sku}: on_hand {level.on_hand}, reserved {level.reserved}, "
                        f"ledger sum {total}")  # fmt: skip
    if gated:
        state = gate_state(store=level.store, product=level.product)
        if state["admitted"] != units or state["refunded"] != 0 or state["tokens"] != 0:
            problems.append(f"{sku}: gate {state}, expected {units} admitted, none refunded")
    return problems


def wait_for_audit_relay(timeout: float = 60) -> None:
    """The worker has relayed every audit entry: the next round starts on a quiet
    machine and the worker's statements stay in the round that caused them."""
    from audit.models import AuditOutboxEntry

    deadline = time.monotonic() + timeout
    while AuditOutboxEntry.objects.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not relay the audit outbox within 60 s")
        time.sleep(0.2)


def gate_answers(metrics_dir: Path) -> dict[str, float]:
    """``inventory_flash_gate_answers_total`` by answer, summed over gunicorn's workers,
    read from their files (asking the server would count in the figures)."""
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(metrics_dir))
    answers: dict[str, float] = {}
    for family in registry.collect():
        if family.name == "inventory_flash_gate_answers":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    answer = sample.labels["answer"]
                    answers[answer] = answers.get(answer, 0) + sample.value
    return answers


# --- Counters ------------------------------------------------------------------------------


class Counters:
    """What the database, Redis and the CPUs have done so far, read at once."""

    def __init__(self, cluster_url: str, database: str, redis_client, web_session: int):
        import psycopg2

        # Read from the maintenance database: these reads count under its id, not the bench's.
        self.maintenance_url = cluster_url.rsplit("/", 1)[0] + "/postgres"
        self.statistics = psycopg2.connect(self.maintenance_url)
        self.statistics.autocommit = True
        self.database, self.redis, self.web_session = database, redis_client, web_session

    def read(self) -> dict:
        with self.statistics.cursor() as cursor:
            cursor.execute(
                "SELECT rolname, queryid, sum(calls), min(query) FROM pg_stat_statements "
                "JOIN pg_roles ON pg_roles.oid = userid "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = %s) GROUP BY 1, 2",
                (self.database,),
            )
            statements = {(role, queryid): (int(calls), query)
                          for role, queryid, calls, query in cursor}  # fmt: skip
        commands = {
            name.removeprefix("cmdstat_"): int(stats["calls"])
            for name, stats in self.redis.info("commandstats").items()
        }
        return {
            "statements": statements,
            "commands": commands,
            "web_cpu": sum(cpu_by_pid(session_pids(self.web_session)).values()),
            "db_cpu": postgres_server_cpu(self.maintenance_url),
        }

    def close(self) -> None:
        self.statistics.close()


def difference(after: dict, before: dict) -> dict:
    statements = {
        queryid: (calls - before["statements"].get(queryid, (0, ""))[0], query)
        for queryid, (calls, query) in after["statements"].items()
    }
    commands = {
        name: calls - before["commands"].get(name, 0) for name, calls in after["commands"].items()
    }
    commands["info"] = commands.get("info", 0) - 1  # the reading's own
    return {
        "statements": {key: value for key, value in statements.items() if value[0]},
        "web_statements": sum(
            calls for (role, _), (calls, _) in statements.items() if role != WORKER_ROLE
        ),  # fmt: skip
        "worker_statements": sum(
            calls for (role, _), (calls, _) in statements.items() if role == WORKER_ROLE
        ),  # fmt: skip
        "commands": {name: calls for name, calls in commands.items() if calls},
        "web_cpu": after["web_cpu"] - before["web_cpu"],
        "db_cpu": after["db_cpu"] - before["db_cpu"],
    }


# --- A round -----------------------------------------------------------------------------


def flash_sale(port: int, sku: str, token: str, buyers: int, units: int,
               counters: Counters | None) -> dict:  # fmt: skip
    """One sale by the load generator; ``counters`` read before it, at its sell-out and
    after its last answer. Returns the generator's figures with ``sale`` and ``tail``,
    the counters' differences over the sale up to the sell-out and after it."""
    command = [sys.executable, __file__, LOAD_GENERATOR, "--port", str(port), "--path",
               purchase_path(sku), "--token", token, "--buyers", str(buyers),
               "--connections", str(CONNECTIONS), "--units", str(units)]  # fmt: skip
    start = counters.read() if counters else None
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    at_sell_out, result = None, None
    for line in child.stdout:
        if line.strip() == SOLD_OUT_LINE and counters:
            at_sell_out = counters.read()
        elif line.startswith(RESULT_LINE):
            result = json.loads(line.removeprefix(RESULT_LINE))
    if child.wait() != 0 or result is None:
        raise SystemExit(f"the load generator failed ({child.returncode})")
    if counters and at_sell_out is not None:
        end = counters.read()
        result["sale"] = difference(at_sell_out, start)
        result["tail"] = difference(end, at_sell_out)
    return result


def run_rounds(port: int, token: str, counters: Counters, metrics_dir: Path) -> dict:
    from django.db import connections

    rounds = {"on": [], "off": []}
    problems = []
    for number in range(2 * ROUNDS):
        variant = ORDER[number % len(ORDER)]
        sku = round_sku(variant, len(rounds[variant]))
        answers_before = gate_answers(metrics_dir)
        connections.close_all()  # this process's session idle, out of the figures
        result = flash_sale(port, sku, token, BUYERS, UNITS, counters)
        statuses = {int(code): count for code, count in result["statuses"].items()}
        sold = sum(count for code, count in statuses.items() if 200 <= code < 300)
        unexpected = {code: count for code, count in statuses.items()
                      if not (200 <= code < 300 or code == 409)}  # fmt: skip
        if unexpected or not result["sold_out"]:
            problems.append(f"{sku}: answers {statuses}")
        problems += check_round(sku, UNITS, variant == "on", sold)
        after = gate_answers(metrics_dir)
        result["gate_answers"] = {answer: after.get(answer, 0) - answers_before.get(answer, 0)
                                  for answer in after}  # fmt: skip
        rounds[variant].append(result)
        if result["sold_out"]:
            figures = round_figures(result)
            log(f"round {number + 1}/{2 * ROUNDS}, gate {variant}: sold out in "
                f"{result['sell_out_s']:.2f} s, {figures['rate']:.0f} sold-out answers/s, "
                f"p99 {result['sold_out_p99_ms']:.1f} ms, {figures['statements']:.3f} "
                f"statements and {figures['round_trips']:.2f} Redis round trips "
                f"per sold-out answer")  # fmt: skip
        if problems:
            raise RoundFailed(problems)
        wait_for_audit_relay()
        time.sleep(1)  # the processes' sold-out flags of this level run out
    return rounds


class RoundFailed(Exception):
    pass


def round_sku(variant: str, index: int) -> str:
    return f"FLASH-{variant.upper()}-{index + 1:02d}"


def round_figures(result: dict) -> dict:
    """Per sold-out answer after the sell-out (``window_figures``), and with ``sale_``
    per unit sold up to it (the few sold-out answers before it included)."""
    figures = window_figures(result["tail"], max(result["tail_answers"], 1))
    sale = window_figures(result["sale"], UNITS)
    figures.update({f"sale_{name}": value for name, value in sale.items()})
    figures["rate"] = result["tail_answers"] / result["tail_s"]
    figures["generator_ms"] = 1000 * result["cpu_s"] / result["requests"]
    return figures


def window_figures(window: dict, count: int) -> dict:
    """Per ``count`` of a window: database statements of the web, Redis round trips
    (script calls: each of the request path's calls is one), of which the gate's, every
    Redis command (those run inside the scripts too), CPU ms of gunicorn and PostgreSQL."""
    commands = window["commands"]
    scripts = commands.get("evalsha", 0) + commands.get("eval", 0)
    gate = sum(commands.get(name, 0) for name in GATE_SCRIPT_COMMANDS)
    return {
        "statements": window["web_statements"] / count,
        "worker_statements": window["worker_statements"],
        "round_trips": scripts / count,
        "gate_calls": gate / count,
        "commands": sum(commands.values()) / count,
        "app_ms": 1000 * window["web_cpu"] / count,
        "db_ms": 1000 * window["db_cpu"] / count,
    }


# --- Report ------------------------------------------------------------------------------

SALE_COLUMNS = [
    ("DB stmt", "sale_statements", "{:.2f}"),
    ("Redis rt", "sale_round_trips", "{:.2f}"),
    ("gate rt", "sale_gate_calls", "{:.2f}"),
    ("app ms", "sale_app_ms", "{:.2f}"),
    ("db ms", "sale_db_ms", "{:.3f}"),
]


def report(rounds: dict) -> None:
    figures = {variant: [round_figures(run) for run in runs] for variant, runs in rounds.items()}

    def med(variant, name):
        if name in figures[variant][0]:
            return median(f[name] for f in figures[variant])
        return median(run[name] for run in rounds[variant])

    columns = [
        ("sell-out s", "sell_out_s", "{:.2f}"),
        ("409/s", "rate", "{:.0f}"),
        ("p50 ms", "sold_out_p50_ms", "{:.1f}"),
        ("p99 ms", "sold_out_p99_ms", "{:.1f}"),
        ("DB stmt", "statements", "{:.3f}"),
        ("Redis rt", "round_trips", "{:.3f}"),
        ("gate rt", "gate_calls", "{:.3f}"),
        ("Redis cmd", "commands", "{:.2f}"),
        ("app ms", "app_ms", "{:.2f}"),
        ("db ms", "db_ms", "{:.3f}"),
        ("loadgen ms", "generator_ms", "{:.2f}"),
    ]
    print()
    print(f"Flash sale: {BUYERS:,} buyers of 1 unit for {UNITS} units, {CONNECTIONS} "
          f"connections; medians of {ROUNDS} rounds per variant, rounds alternating "
          f"{', '.join(ORDER)}, ...; machine load {machine_load()}")  # fmt: skip
    print("per sold-out answer after the sell-out, except the time to sell out (from the "
          "first request sent to the last unit's sale answered)")  # fmt: skip
    print(f"{'gate':<7}" + "".join(f"{title:>11}" for title, _, _ in columns))
    for variant in ("on", "off"):
        print(f"{variant:<7}" + "".join(
            f"{fmt.format(med(variant, name)):>11}" for _, name, fmt in columns))  # fmt: skip
    ratios = []
    for _, name, _ in columns:
        off = med("off", name)
        ratios.append(f"{med('on', name) / off:.2f}" if off else "-")
    print(f"{'on/off':<7}" + "".join(f"{ratio:>11}" for ratio in ratios))
    print(f"the sale up to the sell-out, per unit sold: {'':<6}" + "".join(
        f"{title:>11}" for title, _, _ in SALE_COLUMNS))  # fmt: skip
    for variant in ("on", "off"):
        print(f"{'':<43}{variant:<7}" + "".join(
            f"{fmt.format(med(variant, name)):>11}" for _, name, fmt in SALE_COLUMNS))  # fmt: skip
    for variant in ("on", "off"):
        print(f"per round, gate {variant}: " + "; ".join(
            f"{run['sell_out_s']:.2f} s, {f['rate']:.0f}/s, p99 {run['sold_out_p99_ms']:.1f} ms, "
            f"{f['statements']:.3f} stmt, {f['round_trips']:.2f} rt"
            for run, f in zip(rounds[variant], figures[variant], strict=True)))  # fmt: skip
    for number, run in enumerate(rounds["on"], start=1):
        web = {key: value for key, value in run["tail"]["statements"].items()
               if key[0] != WORKER_ROLE}  # fmt: skip
        if web:  # the goal is none: say which
            print(f"gate on, round {number}: the web's statements after the sell-out: "
                  + top_statements({"statements": web}))  # fmt: skip
    for variant in ("on", "off"):
        run = rounds[variant][0]
        print(f"gate {variant}, first round: {run['tail_answers']:,} sold-out answers after "
              f"the sell-out in {run['tail_s']:.1f} s")  # fmt: skip
        print("  statements up to the sell-out, by count: " + top_statements(run["sale"]))
        print("  statements after the sell-out, by count: " + top_statements(run["tail"]))
        print("  Redis commands after the sell-out, per answer: " + ", ".join(
            f"{name} {calls / max(run['tail_answers'], 1):.3f}"
            for name, calls in sorted(run["tail"]["commands"].items(),
                                      key=lambda item: -item[1])))  # fmt: skip
        answers = run["gate_answers"]
        print("  gate answers in the round (inventory_flash_gate_answers_total): "
              + (", ".join(f"{name} {int(count)}" for name, count in sorted(answers.items())
                           if count) or "none"))  # fmt: skip
    print(
        "409/s: sold-out answers per second after the sell-out; p50/p99: of those answers, "
        "each timed by the load generator from its connect to the last byte. DB stmt: "
        "pg_stat_statements calls (top level) of gunicorn's role: every statement it sent, "
        "the connection health check's SELECT 1 included, and each deferred foreign key "
        "check run at commit (the worker's, another role, are listed apart). Redis rt: "
        "EVALSHA/EVAL calls (every call of the request path is one script), of which "
        "the gate's (gate rt: its admission or registry read); "
        "Redis cmd: INFO commandstats, the commands the scripts run included. app ms: CPU "
        "of gunicorn's master and workers; db ms: of the private PostgreSQL cluster; "
        "loadgen ms: of the load generator, per request"
    )
    print(
        f"caveat: {os.cpu_count()} shared cores run the load generator, gunicorn, "
        "PostgreSQL, Redis and the Celery worker together: read the ratios"
    )


def top_statements(difference_: dict, limit: int = 4) -> str:
    ranked = sorted(difference_["statements"].items(), key=lambda item: -item[1][0])
    if not ranked:
        return "none"
    return "; ".join(
        f"{calls} x {'worker' if role == WORKER_ROLE else 'web'}: {' '.join(query.split())[:60]}"
        for (role, _), (calls, query) in ranked[:limit])  # fmt: skip


# --- Run ---------------------------------------------------------------------------------


def main() -> int:
    from tests.processes import free_port, project_env, stop

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="flash-bench-"))
    # Private: INFO commandstats counts the whole server's commands.
    redis_server, redis_url, redis_client = scratch_redis("", work)
    cluster = PostgresCluster(preload="pg_stat_statements")
    server = worker = counters = None
    try:
        cluster.start()
        database_url = cluster.url(DATABASE)
        sql_rows(cluster.url("postgres"), "CREATE EXTENSION pg_stat_statements")
        sql_rows(cluster.url("postgres"), f'CREATE DATABASE "{DATABASE}"')
        port = free_port()
        variables = deployed_variables(
            database_url=database_url, redis_url=redis_url,
            cache_prefix=f"bench-{uuid.uuid4().hex[:8]}", secret="flash-bench",
        )  # fmt: skip
        env = project_env(**variables)
        web_env = {**env, **web_variables(port, work)}
        checked(["bin/run", "migrate"], env, "bin/run migrate", timeout=180)
        log(f"private PostgreSQL on :{cluster.port} with pg_stat_statements, database "
            f"{DATABASE} migrated; machine load {machine_load()}")  # fmt: skip
        os.environ.update(variables)  # this process seeds, switches the gates and checks
        import django

        django.setup()
        sql_rows(cluster.url("postgres"), f"CREATE ROLE {WORKER_ROLE} LOGIN SUPERUSER")
        worker_env = {**env, "DATABASE_URL": database_url.replace("postgres@", f"{WORKER_ROLE}@")}
        worker = start_worker(worker_env, work / "worker.log")
        skus_on = ["WARM-ON"] + [round_sku("on", i) for i in range(ROUNDS)]
        skus_off = ["WARM-OFF"] + [round_sku("off", i) for i in range(ROUNDS)]
        token = seed(skus_on, skus_off)
        switched = time.monotonic()
        server = start_web(web_env, work / "web.log")
        log(f"{2 * ROUNDS} levels of {UNITS} units ({ROUNDS} gated); bin/run web on :{port}, "
            f"bin/run worker")  # fmt: skip
        for sku in ("WARM-ON", "WARM-OFF"):  # imports, connections, scripts, lookups
            flash_sale(port, sku, token, WARMUP_BUYERS, WARMUP_UNITS, None)
        from django.conf import settings

        # The reseed a gate switched on asks of the worker runs before the first round.
        time.sleep(max(0.0, switched + 2 * settings.FLASH_GATE_REGISTRY_SECONDS + 3
                       - time.monotonic()))  # fmt: skip
        wait_for_audit_relay()
        counters = Counters(database_url, DATABASE, redis_client, server.pid)
        metrics_dir = Path(web_env["PROMETHEUS_MULTIPROC_DIR"])
        try:
            rounds = run_rounds(port, token, counters, metrics_dir)
        except RoundFailed as failure:
            for problem in failure.args[0]:
                print(f"CHECK FAILED: {problem}")
            print(f"web log tail:\n{(work / 'web.log').read_text()[-2000:]}")
            return 1
        report(rounds)
        print(f"check: each of {2 * ROUNDS} rounds sold exactly {UNITS} units (ledger, "
              f"answers, gate counts), every answer 2xx or 409: OK")  # fmt: skip
        print(f"the run took {time.monotonic() - started:.0f}s")
        return 0
    finally:
        if counters is not None:
            counters.close()
        for process in (server, worker):
            if process is not None:
                stop(process)
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        cluster.stop()
        redis_server.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == [LOAD_GENERATOR]:
        buyers_main(sys.argv[2:])
        sys.exit(0)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
