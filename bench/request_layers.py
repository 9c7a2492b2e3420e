"""What each layer of the request path costs, to decide which ones stay on it.

    make bench-layers       # or: .venv/bin/python bench/request_layers.py

Part 1, middleware and hooks, in one process, no network: Django's WSGI handler is
called in a loop with the environ gunicorn would pass, as ``bin/run web`` runs it (DEBUG
off, PostgreSQL, Redis, rate limiting on with high limits, PROMETHEUS_MULTIPROC_DIR set),
for ``/healthz``, a cache-hit stock GET, and a purchase of 1 unit without and with an
Idempotency-Key, all with a member's token. CPU is this process's time.process_time. A
measuring middleware below every MIDDLEWARE entry gives each entry's own time; the DRF
hooks and the view are wrapped to add up their inclusive time; the whole stack, the
stack before issue 12's cut and no middleware at all are timed too. LAYERS_ROUNDS
rounds of LAYERS_REQUESTS requests, variants interleaved; the table shows medians.

Part 2, the gunicorn worker class: ``bin/run web`` with each WORKER_SETUPS entry
(workers, worker class, threads; BENCH_WORKER_SETUPS="2x1 2x4 2x4:nolog" picks), wrk
with 32 connections against ``/healthz``, the cache-hit GET and a purchase: req/s, p99
and gunicorn's CPU per request; setups interleaved over WORKERS_ROUNDS rounds.
BENCH_LAYERS_PART=1 or 2 runs one part only.
"""

import functools
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import (
    UNLIMITED_RATE,
    WRK_SCRIPT,
    checked,
    cpu_by_pid,
    cpu_used_since,
    drop_database,
    log,
    median,
    pg_args,
    refuse_existing_database,
    require_tools,
    run_wrk,
    session_pids,
    start_web,
)
from http_bench import SKU_HIT, SKU_SALE, STORE, level_path, seed

from tests.processes import RedisServer, free_port, project_env, stop

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/inventory_bench_layers"
)
PART = os.environ.get("BENCH_LAYERS_PART", "")
REQUESTS = int(os.environ.get("LAYERS_REQUESTS", "400"))
ROUNDS = int(os.environ.get("LAYERS_ROUNDS", "7"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
WORKERS_DURATION = float(os.environ.get("WORKERS_DURATION", "4"))
WORKERS_ROUNDS = int(os.environ.get("WORKERS_ROUNDS", "2"))


def setup(workers: int, threads: int, access_log: bool = True) -> tuple[str, dict]:
    """A label and the bin/run variables of one gunicorn setup."""
    worker_class = "gthread" if threads > 1 else "sync"
    label = f"{workers} {worker_class}" + (f" x {threads}" if threads > 1 else "")
    variables = {"WEB_CONCURRENCY": str(workers), "WEB_THREADS": str(threads),
                 "WEB_WORKER_CLASS": worker_class}  # fmt: skip
    if not access_log:
        label, variables["WEB_ACCESS_LOG"] = f"{label}, no access log", ""
    return label, variables


# "<workers>x<threads>", ":nolog" for no access log; threads 1 is the sync worker.
WORKER_SETUPS = [
    setup(int(workers), int(threads.split(":")[0]), access_log=not threads.endswith(":nolog"))
    for workers, threads in (
        entry.split("x")
        for entry in os.environ.get(
            "BENCH_WORKER_SETUPS", "2x1 3x1 4x1 2x4 2x8 3x4 4x4 2x1:nolog 2x4:nolog"
        ).split()
    )
]


# --- Part 1: middleware and hooks ----------------------------------------------------------

CLOCK = time.process_time_ns
# settings.MIDDLEWARE before issue 12 cut it (whitenoise added with DEBUG off, as now),
# measured as a whole beside today's stack.
MIDDLEWARE_BEFORE_THE_CUT = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "inventory_site.null_characters.RefuseNullCharactersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
# Per boundary: CPU ns spent inside it (everything below it), summed over the requests.
inside: dict[int, int] = {}
# Per probed hook: [CPU ns inclusive, calls], summed over the requests.
probes: dict[str, list[int]] = {}


def boundary(index: int) -> type:
    """A middleware that only measures the CPU time spent below it."""

    class Boundary:
        def __init__(self, get_response):
            self.get_response = get_response

        def __call__(self, request):
            began = CLOCK()
            response = self.get_response(request)
            inside[index] = inside.get(index, 0) + CLOCK() - began
            return response

    Boundary.__name__ = Boundary.__qualname__ = f"Boundary{index}"
    globals()[Boundary.__name__] = Boundary
    return Boundary


def with_boundaries(middleware: list[str]) -> list[str]:
    """Boundary 0 and 1 adjacent (their difference is what one boundary costs), then one
    boundary below each middleware."""
    module = __name__
    stack = [f"{module}.{boundary(0).__name__}", f"{module}.{boundary(1).__name__}"]
    for index, name in enumerate(middleware, start=2):
        stack += [name, f"{module}.{boundary(index).__name__}"]
    return stack


def probe(owner, attribute: str, label: str) -> None:
    """Wrap ``owner.attribute`` (a function or method) to add its inclusive CPU time and
    calls to ``probes[label]``."""
    original = getattr(owner, attribute)

    @functools.wraps(original)
    def probed(*args, **kwargs):
        began = CLOCK()
        try:
            return original(*args, **kwargs)
        finally:
            entry = probes.setdefault(label, [0, 0])
            entry[0] += CLOCK() - began
            entry[1] += 1

    setattr(owner, attribute, probed)


def install_probes() -> list[str]:
    """The hooks inside the API view worth a line of their own; inclusive times."""
    from django.db import connections
    from rest_framework.response import Response
    from rest_framework.views import APIView

    import inventory_site.api.views as api_views
    from stock import idempotency
    from stock.apis import StockLevelDetailApi, StockPurchaseApi

    hooks = [
        (api_views, "open_gate", "rate limits + lookup generations (1 Redis round trip)"),
        (api_views, "enforce_ip_rate_limit", "rate limit per IP"),
        (APIView, "initial", "DRF's initial (the lines below)"),
        (APIView, "perform_authentication", "  authentication (token -> user)"),
        (api_views, "enforce_user_limit", "  per-user rate limit"),
        (api_views, "enforce_user_rate_limit", "  per-user rate limit"),
        (APIView, "check_permissions", "  DRF's permission check"),
        (APIView, "perform_content_negotiation", "  DRF content negotiation"),
        (StockLevelDetailApi, "get", "view's get (store, product, cache read)"),
        (StockPurchaseApi, "post", "view's post (store, product, key, service)"),
        (idempotency, "_claim", "  Idempotency-Key claimed (INSERT)"),
        (idempotency, "_store", "  Idempotency-Key answer stored (UPDATE)"),
        (StockPurchaseApi, "perform", "  stock_purchase (statement, after-commit work)"),
        (APIView, "finalize_response", "DRF finalize_response"),
        (Response, "render", "rendering the JSON"),
        (type(connections["default"]), "is_usable", "CONN_HEALTH_CHECKS' SELECT 1"),
    ]
    labels = []
    for owner, attribute, label in hooks:
        if hasattr(owner, attribute):
            probe(owner, attribute, label)
            labels.append(label)
    return labels


def environ_for(path: str, token: str, body: bytes = b"", unique_key: bool = False) -> dict:
    """What gunicorn passes for one request; with ``body`` a JSON POST, with
    ``unique_key`` a new Idempotency-Key on every call."""
    environ = {
        "REQUEST_METHOD": "POST" if body else "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "wrk",
        "HTTP_ACCEPT": "*/*",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Token {token}"
    if body:
        environ |= {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body))}
    return environ | {"bench.body": body, "bench.unique_key": unique_key}


def handler_with(middleware: list[str]):
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    with override_settings(MIDDLEWARE=middleware):
        return WSGIHandler()


def call(handler, environ: dict) -> str:
    statuses = []
    environ = {**environ, "wsgi.input": io.BytesIO(environ["bench.body"])}
    if environ["bench.unique_key"]:
        environ["HTTP_IDEMPOTENCY_KEY"] = uuid.uuid4().hex
    response = handler(environ, lambda status, headers, exc_info=None: statuses.append(status))
    for _chunk in response:
        pass
    response.close()  # request_finished: what gunicorn does after each response
    return statuses[0]


def run_requests(handler, environ: dict, requests: int) -> dict:
    """CPU µs per request: in total, inside each boundary, in each probed hook."""
    status = call(handler, environ)
    if not status.startswith("200"):
        raise SystemExit(f"{environ['PATH_INFO']} answered {status}")
    inside.clear()
    probes.clear()
    began = CLOCK()
    for _ in range(requests):
        call(handler, environ)
    total = CLOCK() - began
    result = {"total": total / requests / 1000}
    result |= {f"inside {index}": ns / requests / 1000 for index, ns in inside.items()}
    result |= {label: ns / requests / 1000 for label, (ns, _) in probes.items()}
    result |= {f"calls {label}": calls / requests for label, (_, calls) in probes.items()}
    return result


def short_name(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def measure_layers(tokens: dict) -> None:
    from django.conf import settings
    from django.db import connection

    full = list(settings.MIDDLEWARE)
    hooks = install_probes()
    handlers = {
        "measured": handler_with(with_boundaries(full)),
        "whole": handler_with(full),
        "before the cut": handler_with(MIDDLEWARE_BEFORE_THE_CUT),
        "none": handler_with([]),
    }
    purchase, body = level_path(SKU_SALE) + "purchase/", b'{"quantity": 1}'
    paths = {
        "/healthz": environ_for("/healthz", ""),
        "GET hit": environ_for(level_path(SKU_HIT.format(0)), tokens["member"]),
        "purchase": environ_for(purchase, tokens["member"], body),
        "+ key": environ_for(purchase, tokens["member"], body, unique_key=True),
    }
    runs = {(variant, path): [] for variant in handlers for path in paths}
    for round_ in range(ROUNDS):
        for variant, handler in handlers.items():
            for path, environ in paths.items():
                runs[variant, path].append(run_requests(handler, environ, REQUESTS))
        log(f"layers: round {round_ + 1}/{ROUNDS} done")

    def med(variant, path, field):
        return median(run.get(field) for run in runs[variant, path])

    rows = []  # (label, {path: µs})
    for path in paths:
        overhead = med("measured", path, "inside 0") - med("measured", path, "inside 1")
        outer = med("measured", path, "total") - med("measured", path, "inside 0")
        rows_of_path = [("WSGI handler: request, signals, response close", outer)]
        for index, name in enumerate(full, start=2):
            above = med("measured", path, f"inside {index - 1}")
            below = med("measured", path, f"inside {index}")
            rows_of_path.append((short_name(name), above - below - overhead))
        rows_of_path.append(("below the middleware: URL resolution + view",
                             med("measured", path, f"inside {len(full) + 1}")))  # fmt: skip
        for label in hooks:
            called = any(run.get(f"calls {label}") for run in runs["measured", path])
            rows_of_path.append((label, med("measured", path, label) if called else None))
        rows_of_path.append(("= whole stack, no boundaries (total)", med("whole", path, "total")))
        rows_of_path.append(
            ("  MIDDLEWARE before issue 12's cut (total)", med("before the cut", path, "total"))
        )
        rows_of_path.append(("  no middleware at all (total)", med("none", path, "total")))
        rows.append((path, overhead, rows_of_path))

    print()
    print(f"CPU µs per request in one process (time.process_time), median of {ROUNDS} rounds "
          f"x {REQUESTS} requests; each middleware's own time (its code before and after "
          "the layers below it)")  # fmt: skip
    print(f"{'layer':<50}" + "".join(f"{path:>10}" for path in paths))
    for i, (label, _) in enumerate(rows[0][2]):
        line = f"{label:<50}"
        for _, _, path_rows in rows:
            value = path_rows[i][1]
            line += f"{value:>10.0f}" if value is not None else f"{'-':>10}"
        print(line)
    print(
        "indented hooks are part of the line above them; a boundary's own cost (subtracted "
        "from each middleware): " + ", ".join(f"{path} {o:.1f}" for path, o, _ in rows)
    )
    print(
        f"PROMETHEUS_MULTIPROC_DIR set: {bool(os.environ.get('PROMETHEUS_MULTIPROC_DIR'))}, "
        f"RATELIMIT_ENABLE={settings.RATELIMIT_ENABLE}, DEBUG={settings.DEBUG}, "
        f"CONN_HEALTH_CHECKS={connection.settings_dict.get('CONN_HEALTH_CHECKS')}, "
        f"database {connection.vendor}, cache {settings.CACHES['default']['BACKEND']}"
    )


# --- Part 2: gunicorn worker classes -------------------------------------------------------


def measure_workers(env: dict, tokens: dict, work: Path) -> None:
    script = work / "bench.lua"
    script.write_text(WRK_SCRIPT)
    scenarios = {
        "/healthz": {"paths": ["/healthz"]},
        "GET hit": {"paths": [level_path(SKU_HIT.format(i)) for i in range(4)],
                    "token": tokens["member"]},
        "purchase": {"paths": [level_path(SKU_SALE) + "purchase/"], "token": tokens["member"],
                     "method": "POST", "body": '{"quantity": 1}', "expected": "200,201"},
    }  # fmt: skip
    results = {(label, name): [] for label, _ in WORKER_SETUPS for name in scenarios}
    for round_ in range(WORKERS_ROUNDS):
        order = WORKER_SETUPS if round_ % 2 == 0 else WORKER_SETUPS[::-1]
        for label, variables in order:
            port = free_port()
            web_env = {**env, **variables, "PORT": str(port), "BIND_ADDRESS": "127.0.0.1",
                       "PROMETHEUS_MULTIPROC_DIR": str(work / f"metrics-{port}")}  # fmt: skip
            server = start_web(web_env, work / "web.log")
            try:
                url = f"http://127.0.0.1:{port}"
                for kwargs in scenarios.values():
                    run_wrk(url, script, seconds=1, connections=CONNECTIONS, work=work, **kwargs)
                for name, kwargs in scenarios.items():
                    before = cpu_by_pid(session_pids(server.pid))
                    result = run_wrk(url, script, seconds=WORKERS_DURATION,
                                     connections=CONNECTIONS, work=work, **kwargs)  # fmt: skip
                    used = cpu_used_since(before, session_pids(server.pid))
                    result["app_ms"] = 1000 * used / max(result["requests"], 1)
                    if result["unexpected"] or result["socket_errors"]:
                        result["note"] = (
                            f"{result['unexpected']} unexpected, {result['socket_errors']} "
                            "socket errors"
                        )
                    results[label, name].append(result)
            finally:
                stop(server)
        log(f"worker classes: round {round_ + 1}/{WORKERS_ROUNDS} done")
    print()
    print(f"bin/run web, wrk 1 thread x {CONNECTIONS} connections, median of "
          f"{WORKERS_ROUNDS} rounds x {WORKERS_DURATION:g}s, setups interleaved")  # fmt: skip
    print(f"{'setup':<24}" + "".join(f"{name + ' req/s':>16}{'p99 ms':>8}{'app ms':>8}"
                                     for name in scenarios))  # fmt: skip
    for label, _ in WORKER_SETUPS:
        line = f"{label:<24}"
        notes = []
        for name in scenarios:
            runs = results[label, name]
            line += (f"{median(r['rps'] for r in runs):>16.0f}"
                     f"{median(r['p99_us'] for r in runs) / 1000:>8.1f}"
                     f"{median(r['app_ms'] for r in runs):>8.2f}")  # fmt: skip
            notes += [r["note"] for r in runs if r.get("note")]
        print(line + (f"  ({'; '.join(notes)})" if notes else ""))


# --- Run -------------------------------------------------------------------------------------


def main() -> int:
    started = time.monotonic()
    require_tools("createdb", "dropdb", "psql", *(["wrk"] if PART != "1" else []))
    if not RedisServer.available():
        raise SystemExit("redis-server is not on PATH")
    refuse_existing_database(DATABASE_URL)
    work = Path(tempfile.mkdtemp(prefix="layers-bench-"))
    (work / "redis").mkdir()
    (work / "static").mkdir()
    redis_server = RedisServer(free_port(), work / "redis")
    redis_server.start()
    variables = dict(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/0",
        CACHE_KEY_PREFIX=f"bench-{uuid.uuid4().hex[:8]}",
        DEBUG="false",
        SECRET_KEY="layers-bench-" + "x" * 50,
        ALLOWED_HOSTS="127.0.0.1",
        RATELIMIT_ENABLE="true",
        API_RATE_PER_USER=UNLIMITED_RATE,
        API_RATE_PER_IP=UNLIMITED_RATE,
        LOG_LEVEL="WARNING",
        STATIC_ROOT=str(work / "static"),
        DJANGO_SETTINGS_MODULE="inventory_site.settings",
    )
    env = project_env(**variables)
    created = False
    try:
        pg, database = pg_args(DATABASE_URL)
        checked(["createdb", *pg, database], env, "createdb")
        created = True
        checked(["bin/run", "migrate"], env, "bin/run migrate", timeout=180)
        # As bin/run web: the metrics in multiprocess mode (read when prometheus_client
        # is imported, so before Django starts).
        os.environ.update(variables, PROMETHEUS_MULTIPROC_DIR=str(work / "metrics"))
        (work / "metrics").mkdir()
        import django

        django.setup()
        tokens = seed(miss_levels=0)
        log(f"seeded {STORE} in {database}")
        if PART in ("", "1"):
            measure_layers(tokens)
        if PART in ("", "2"):
            from django.db import connections

            connections.close_all()
            measure_workers(env, tokens, work)
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if created:
            drop_database(DATABASE_URL)
        redis_server.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    print(f"\nthe run took {time.monotonic() - started:.0f}s; {os.cpu_count()} shared cores")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
