"""Start the project's own commands in child processes, with a controlled environment."""

import contextlib
import fcntl
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.db import connection
from redis.backoff import NoBackoff
from redis.retry import Retry

ROOT = Path(__file__).resolve().parent.parent


def settings_variables() -> set[str]:
    """Every environment variable inventory_site/settings.py reads through ``env``."""
    source = (ROOT / "inventory_site" / "settings.py").read_text()
    return set(re.findall(r'\benv(?:\.\w+)?\(\s*"([A-Z0-9_]+)"', source))


# A child starts without any of these unless a test sets them.
SETTINGS_VARIABLES = settings_variables() | {"DJANGO_SETTINGS_MODULE"}


# What a child gets unless the test sets it: development mode, as `make test` runs. With
# nothing set the project refuses to start (no SECRET_KEY); tests of that use bare_env.
DEVELOPMENT = {"DEBUG": "true"}


def project_env(**variables: str) -> dict[str, str]:
    """The current environment without the project's settings, in development mode
    (``DEVELOPMENT``), plus ``variables``; the interpreter running the tests comes first
    on PATH, as in the image."""
    return bare_env(**{**DEVELOPMENT, **variables})


def bare_env(**variables: str) -> dict[str, str]:
    """The current environment without the project's settings, plus ``variables`` only."""
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS_VARIABLES}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(variables)
    return env


@contextlib.contextmanager
def machine_lock(name: str):
    """Held by one process of this machine at a time (an flock on a file in the temporary
    directory). For what the test workers of `make test` (pytest-xdist: one process per
    core, each with its own test database and Redis database) still share: the
    PostgreSQL cluster's roles and connections, the streaming replica."""
    path = Path(tempfile.gettempdir()) / f"inventory-tests-{os.getuid()}-{name}.lock"
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_cache(port: int, key_prefix: str = "") -> dict:
    """A CACHES setting whose default cache is the Redis at ``port`` on 127.0.0.1 (one a
    test started, or none: a dead cache), with short socket timeouts, so that an outage
    costs a test half a second per call, not redis-py's default wait."""
    default = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{port}/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
    if key_prefix:
        default["KEY_PREFIX"] = key_prefix
    return {"default": default}


def redis_url() -> str:
    """The broker children use: they read REDIS_URL, as in the services mode."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs REDIS_URL: the worker and beat take their broker from it")
    return os.environ["REDIS_URL"]


def read(log: Path) -> str:
    return log.read_text(errors="replace")


def wait_until(check, *, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return False


def stop(process: subprocess.Popen, *, timeout: float = 20) -> None:
    """Stop a child started with ``start_new_session=True`` and everything it forked
    (gunicorn and Celery workers): SIGTERM to the group, SIGKILL if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def url_of_the_test_database() -> str:
    """A DATABASE_URL for child processes that points at pytest's PostgreSQL test database."""
    database = connection.settings_dict
    user, password = (quote(database[key] or "", safe="") for key in ("USER", "PASSWORD"))
    host, port = database["HOST"] or "127.0.0.1", database["PORT"] or 5432
    return f"postgres://{user}:{password}@{host}:{port}/{database['NAME']}"


class RedisServer:
    """A private redis-server child process on a fixed port, stoppable and restartable."""

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def __init__(self, port: int, directory):
        self.port, self.directory, self.process = port, directory, None

    def client(self) -> redis.Redis:
        # No retries: redis-py's default backs off for seconds on a refused connection.
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=1, retry=Retry(NoBackoff(), 0)
        )

    def answers(self) -> bool:
        try:
            return self.client().ping()
        except redis.RedisError:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--daemonize", "no"]
            + ["--dir", str(self.directory), "--dbfilename", "dump.rdb"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if (
            not wait_until(
                lambda: self.process.poll() is not None or self.answers(), timeout=5, interval=0.05
            )
            or self.process.poll() is not None
        ):
            raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self, *, keep_data: bool = False) -> None:
        """Stop the server; with ``keep_data`` it writes its data set first, and the next
        ``start`` loads it (as a Redis with persistence comes back)."""
        if self.process is None or self.process.poll() is not None:
            return
        if keep_data:
            try:
                self.client().shutdown(save=True)
            except redis.ConnectionError:
                pass  # the server closes the connection as it exits
        else:
            self.process.kill()
        self.process.wait(timeout=5)
        assert not self.answers()


def answers_health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def http_get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.read().decode()


def post_json(
    port: int, path: str, body: dict, token: str, timeout: float = 60
) -> tuple[int, dict]:
    """One request on a new connection: (status, JSON body). Anything else comes back as
    a status the assertions will name: 0 for a failed connection, a ``raw`` body for a
    body that is not JSON."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        client.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )
        response = client.getresponse()
        content = response.read()
    except OSError as error:
        return 0, {"error": repr(error)}
    finally:
        client.close()
    try:
        return response.status, json.loads(content)
    except ValueError:
        return response.status, {"raw": content[:200].decode(errors="replace")}


class ProjectProcesses:
    """``bin/run`` commands as child processes, each in its own process group with its
    log in ``directory``; ``stop_all`` (at teardown, before the test database is
    flushed) stops the last started first."""

    def __init__(self, env: dict[str, str], directory: Path):
        self.env, self.directory = env, directory
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str, **variables: str) -> Path:
        """Start ``bin/run <args>`` as ``name``, with ``variables`` added to the
        environment of this process only; returns its log file."""
        log = self.directory / f"{name}.log"
        with open(log, "a") as output:
            self.processes[name] = subprocess.Popen(
                ["bin/run", *args],
                cwd=ROOT,
                env={**self.env, **variables},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return log

    def start_web(self, name: str = "web", **variables: str) -> int:
        """``bin/run web`` on a free port, once it answers /healthz; returns the port."""
        return self.start_serving(name, "web", "--no-control-socket", **variables)

    def start_serving(self, name: str, *args: str, port: int | None = None, **variables) -> int:
        """``bin/run <args>`` (``web``, ``events``) on ``port`` (else a free one), once
        it answers /healthz, with ``variables`` as ``start``; returns the port."""
        port = port or free_port()
        self.env = {**self.env, "PORT": str(port), "BIND_ADDRESS": "127.0.0.1"}
        log = self.start(name, *args, **variables)
        process = self.processes[name]
        if (
            not wait_until(
                lambda: process.poll() is not None or answers_health(port), timeout=30, interval=0.2
            )
            or process.poll() is not None
        ):
            raise RuntimeError(f"bin/run {args[0]} did not start:\n{log.read_text()[-3000:]}")
        return port

    def kill(self, name: str) -> None:
        """SIGKILL to the whole process group: no shutdown handler runs."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for name in reversed(list(self.processes)):
            stop(self.processes.pop(name))
