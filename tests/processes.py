"""Start the project's own commands in child processes, with a controlled environment."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent

# Every variable the settings read; a child starts without them unless a test sets them.
SETTINGS_VARIABLES = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "CONN_MAX_AGE",
    "REDIS_URL",
    "CACHE_KEY_PREFIX",
    "STOCK_CACHE_TTL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CELERY_TASK_ALWAYS_EAGER",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_COOKIES",
    "LOG_LEVEL",
    "STATIC_ROOT",
    "DJANGO_SETTINGS_MODULE",
}


def project_env(**variables: str) -> dict[str, str]:
    """The current environment without the project's settings, plus ``variables``; the
    interpreter running the tests comes first on PATH, as in the image."""
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS_VARIABLES}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(variables)
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
