"""What the benchmarks share: a scratch PostgreSQL database, the project's processes
started through ``bin/run`` with the settings they are deployed with, wrk as the load,
single HTTP requests, and CPU time read from /proc."""

import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.processes import answers_health, stop, wait_until  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WRK_RESULT = "BENCH-RESULT "
# Rate limiting stays on, as deployed: every request is counted, none refused.
UNLIMITED_RATE = "1000000000/m"

# One wrk script for every scenario. Arguments (after `--`): method, a file of paths
# (requested round-robin), a token ("" for none), a body ("" for none), an
# Idempotency-Key prefix ("" for none: no header; else a key unique per request), the
# statuses counted as expected ("200,201") and, optionally, one more header ("Name: value").
# Prints one BENCH-RESULT JSON line.
WRK_SCRIPT = r"""
local paths, method, body, key_prefix, expected = {}, "GET", nil, "", {}
local headers = {}
local n = 0
ok, unexpected, first_unexpected, hits, misses = 0, 0, 0, 0, 0
function setup(thread)
  setup_count = (setup_count or 0) + 1
  thread:set("thread_id", setup_count)
  threads = threads or {}
  threads[#threads + 1] = thread
end
function init(args)
  method = args[1]
  for line in io.lines(args[2]) do paths[#paths + 1] = line end
  if args[3] ~= "" then headers["Authorization"] = "Token " .. args[3] end
  if args[4] ~= "" then
    body = args[4]
    headers["Content-Type"] = "application/json"
  end
  key_prefix = args[5]
  for status in string.gmatch(args[6], "%d+") do expected[tonumber(status)] = true end
  if args[7] and args[7] ~= "" then
    local name, value = string.match(args[7], "^([^:]+):%s*(.*)$")
    headers[name] = value
  end
end
function request()
  n = n + 1
  local path = paths[(n - 1) % #paths + 1]
  if key_prefix ~= "" then
    headers["Idempotency-Key"] = key_prefix .. "-" .. thread_id .. "-" .. n
  end
  return wrk.format(method, path, headers, body)
end
function response(status, hdrs, content)
  if expected[status] then ok = ok + 1 else
    unexpected = unexpected + 1
    if first_unexpected == 0 then first_unexpected = status end
  end
  local cache = hdrs["X-Cache"]
  if cache == "HIT" then hits = hits + 1 elseif cache == "MISS" then misses = misses + 1 end
end
function done(summary, latency, requests)
  local o, u, f, h, m = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    o, u, h, m = o + t:get("ok"), u + t:get("unexpected"), h + t:get("hits"), m + t:get("misses")
    if f == 0 then f = t:get("first_unexpected") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"ok": %d, "unexpected": %d, "first_unexpected": %d, "hits": %d, "misses": %d, '
    .. '"socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    o, u, f, h, m, e.connect + e.read + e.write + e.timeout))
end
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def require_tools(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            hint = " (apt-get install -y wrk)" if tool == "wrk" else ""
            raise SystemExit(f"{tool} is not on PATH{hint}")


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


def refuse_existing_database(url: str) -> None:
    pg, database = pg_args(url)
    query = f"SELECT 1 FROM pg_database WHERE datname = '{database}'"
    existing = subprocess.run(
        ["psql", *pg, "-d", "postgres", "-tAc", query], capture_output=True, text=True
    ).stdout.strip()
    if existing == "1":
        raise SystemExit(f"database {database} exists (left by a crashed run?): dropdb {database}")


def scratch_redis(url: str, work: Path):
    """The bench's Redis: a private ``redis-server`` in ``work`` (when ``url`` is empty),
    else the empty database at ``url``. Returns (server or None, url, client)."""
    import redis

    from tests.processes import RedisServer, free_port

    server = None
    if not url:
        if not RedisServer.available():
            raise SystemExit("redis-server is not on PATH: install it or set BENCH_REDIS_URL")
        (work / "redis").mkdir()
        server = RedisServer(free_port(), work / "redis")
        server.start()
        url = f"redis://127.0.0.1:{server.port}/0"
    client = redis.Redis.from_url(url)
    if server is None and client.dbsize():
        raise SystemExit(f"{url} is not empty: the bench needs a Redis database of its own")
    return server, url, client


class PostgresCluster:
    """A private PostgreSQL cluster (initdb, pg_ctl) on a free port, for a bench that needs
    what the shared server does not load: ``preload`` libraries (pg_stat_statements),
    which only a server start loads, and the shared server is not restarted. Its data
    directory is a new one under /tmp, owned by ``postgres`` when run as root (initdb
    refuses root), removed by ``stop``."""

    def __init__(self, *, preload: str = ""):
        from tests.processes import free_port

        self.port, self.preload = free_port(), preload
        self.directory = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
        self.bin = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version)[-1])
        self.started = False

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        data = str(self.directory / "data")
        checked(self._as_owner(str(self.bin / "initdb"), "-D", data, "-U", "postgres",
                               "--auth=trust", "-E", "UTF8", "--no-sync"),
                os.environ.copy(), "initdb")  # fmt: skip
        options = f"-c port={self.port} -c listen_addresses=127.0.0.1 "
        options += f"-c unix_socket_directories={self.directory}"
        if self.preload:
            options += f" -c shared_preload_libraries={self.preload}"
        checked(self._as_owner(str(self.bin / "pg_ctl"), "-D", data, "-o", options, "-w",
                               "-l", str(self.directory / "server.log"), "start"),
                os.environ.copy(), "pg_ctl start")  # fmt: skip
        self.started = True

    def stop(self) -> None:
        if self.started:
            subprocess.run(
                self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"),
                               "-m", "immediate", "-w", "stop"),
                capture_output=True, check=False,
            )  # fmt: skip
            self.started = False
        shutil.rmtree(self.directory, ignore_errors=True)


def _version(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())


def drop_database(url: str) -> None:
    pg, database = pg_args(url)
    subprocess.run(["dropdb", *pg, "--force", "--if-exists", database], check=False)


def sql_rows(url: str, query: str, params=()) -> list[tuple]:
    """One query on the database at ``url`` (a new connection, autocommit): for the
    figures a bench reads without setting Django up on that database."""
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


# --- Processes ---------------------------------------------------------------------


def deployed_variables(
    *, database_url: str, redis_url: str, cache_prefix: str, secret: str
) -> dict[str, str]:
    """The settings the benches serve with: as deployed (DEBUG off, rate limiting on)
    but with limits no run reaches, and quiet logs."""
    return dict(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CACHE_KEY_PREFIX=cache_prefix,
        DEBUG="false",
        SECRET_KEY=secret + "-" + "x" * 50,
        ALLOWED_HOSTS="127.0.0.1",
        RATELIMIT_ENABLE="true",
        API_RATE_PER_USER=UNLIMITED_RATE,
        API_RATE_PER_IP=UNLIMITED_RATE,
        EVENTS_STREAM_RATE_PER_USER=UNLIMITED_RATE,
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="inventory_site.settings",
    )


def web_variables(port: int, work: Path) -> dict[str, str]:
    """What ``bin/run web`` needs on top: its port, the collected static files (admin
    pages fail without them when DEBUG is off) and its metrics directory."""
    return {
        "PORT": str(port),
        "BIND_ADDRESS": "127.0.0.1",
        "STATIC_ROOT": str(work / "static"),
        "PROMETHEUS_MULTIPROC_DIR": str(work / f"metrics-{port}"),
    }


def start(args: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    """``bin/run <args>`` in its own session (stopped with tests.processes.stop)."""
    with open(log_path, "a") as output:
        return subprocess.Popen(
            ["bin/run", *args], cwd=ROOT, env=env, stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def start_web(env: dict, log_path: Path, *args: str) -> subprocess.Popen:
    """``bin/run web`` on env's PORT, once it answers /healthz."""
    server = start(["web", *args], env, log_path)
    port = int(env["PORT"])
    if (
        not wait_until(
            lambda: server.poll() is not None or answers_health(port), timeout=60, interval=0.2
        )
        or server.poll() is not None
    ):
        stop(server)
        raise SystemExit(f"bin/run web did not start:\n{log_path.read_text()[-3000:]}")
    return server


def start_worker(env: dict, log_path: Path) -> subprocess.Popen:
    """``bin/run worker``, once it answers a ping."""
    worker = start(["worker"], env, log_path)

    def answers() -> bool:
        if worker.poll() is not None:
            return True
        ping = subprocess.run(["bin/run", "ping-worker"], cwd=ROOT, env=env, capture_output=True)
        return ping.returncode == 0

    if not wait_until(answers, timeout=60, interval=0.5) or worker.poll() is not None:
        stop(worker)
        raise SystemExit(f"bin/run worker did not start:\n{log_path.read_text()[-3000:]}")
    return worker


# --- Single HTTP requests ---------------------------------------------------------


class Answer:
    """One HTTP answer: status, headers (lower-case names), body, and the seconds from
    sending the request to the last byte of the body."""

    def __init__(self, status: int, headers: dict, body: bytes, seconds: float):
        self.status, self.headers, self.body, self.seconds = status, headers, body, seconds

    def json(self):
        return json.loads(self.body)


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    token: str = "",
    cookie: str = "",
    body=None,
    headers: dict | None = None,
    timeout: float = 60,
) -> Answer:
    """One request on a new connection to 127.0.0.1:``port`` (gunicorn's sync workers
    close every connection anyway); ``body`` is sent as JSON. A failed connection
    answers status 0 with the error as its body."""
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Token {token}"
    if cookie:
        sent["Cookie"] = cookie
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    started = time.perf_counter()
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        client.request(method, path, body=payload, headers=sent)
        response = client.getresponse()
        content = response.read()
        answer_headers = {name.lower(): value for name, value in response.getheaders()}
        status = response.status
    except OSError as error:
        status, answer_headers, content = 0, {}, repr(error).encode()
    finally:
        client.close()
    return Answer(status, answer_headers, content, time.perf_counter() - started)


# --- CPU time from /proc -------------------------------------------------------------


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def session_pids(session: int) -> list[int]:
    """The processes of a session: a child started with start_new_session and its forks
    (gunicorn's master and workers, Celery's)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := proc_stat(int(entry.name))) is not None:
            if int(fields[3]) == session:
                pids.append(int(entry.name))
    return pids


def cpu_by_pid(pids) -> dict[int, float]:
    """User + system CPU seconds of each live process of ``pids``."""
    times = {}
    for pid in pids:
        fields = proc_stat(pid)
        if fields is not None:
            times[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return times


def cpu_used_since(before: dict[int, float], pids) -> float:
    """CPU seconds the processes ``pids`` used since ``before`` (a ``cpu_by_pid``): a
    process started since counts whole; one that exited since takes its share with it
    (a lower bound, never negative)."""
    after = cpu_by_pid(pids)
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def database_backends() -> list[int]:
    """The PostgreSQL backends serving the database Django is set up on (this process's
    own aside); their CPU time is readable when PostgreSQL runs on this machine."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def postgres_server_cpu(database_url: str) -> float:
    """CPU seconds the PostgreSQL server on this machine has used: its postmaster's own,
    what its exited children left in the postmaster's account (a backend that
    disconnected keeps counting) and its live children's. Every database's work, so
    only a quiet server's figure is the bench's."""
    import psycopg2

    connection = psycopg2.connect(database_url)
    try:  # the backend read while it lives: once its connection closes it may be gone
        backend = proc_stat(connection.get_backend_pid())
    finally:
        connection.close()
    if backend is None:
        return float("nan")  # PostgreSQL runs elsewhere
    postmaster = int(backend[1])
    fields = proc_stat(postmaster)
    if fields is None:
        return float("nan")
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (child := proc_stat(int(entry.name))) is not None:
            if int(child[1]) == postmaster:
                ticks += int(child[11]) + int(child[12])
    return ticks / CLOCK_TICKS


def machine_load() -> str:
    """The load average, and how many pytest processes run beside the bench: figures
    taken while a test suite runs are slower, and say so."""
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    suites = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            suites += b"pytest" in command
    return load + (f", {suites} pytest processes running" if suites else ", no pytest running")


def machine_busy_seconds() -> float:
    """CPU time every core spent not idle since boot (from /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


# --- wrk -------------------------------------------------------------------------------


def run_wrk(
    url: str,
    script: Path,
    *,
    paths: list[str],
    seconds: float,
    connections: int,
    work: Path,
    method: str = "GET",
    token: str = "",
    body: str = "",
    key_prefix: str = "",
    expected: str = "200",
    threads: int = 1,
    header: str = "",
) -> dict:
    """One wrk run; the figures of its BENCH-RESULT line plus ``rps``."""
    paths_file = work / f"paths-{time.monotonic_ns()}.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    output = checked(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
         "--timeout", "10s", "--latency", "-s", str(script), url, "--",
         method, str(paths_file), token, body, key_prefix, expected, header],
        os.environ.copy(), "wrk", timeout=seconds + 60,
    )  # fmt: skip
    paths_file.unlink()
    line = next(line for line in output.splitlines() if line.startswith(WRK_RESULT))
    result = json.loads(line.removeprefix(WRK_RESULT))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def median(values) -> float:
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else float("nan")


def percentile(values, pct: float) -> float:
    """The value at ``pct`` percent of the sorted ``values`` (nearest rank), NaN if none."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"
