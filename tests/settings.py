"""The settings of the pytest process: the project's own, in development mode.

The project refuses to start without DEBUG or SECRET_KEY (a deployment that forgets them
must not fail open), so the test run turns DEBUG on for itself unless the environment says
otherwise, as `make run` does. Child processes the tests start get theirs from
``tests.processes.project_env``.

`make test` runs the suite in one pytest-xdist worker per core. pytest-django gives each
worker a test database of its own (``test_<name>_gw0``, ...); here each worker also takes
Redis databases of its own (``worker_redis_urls``), so that one worker's cache clear,
Celery queue or worker never meets another's. The rewritten URLs are put back in the
environment, where the tests read the broker their child processes are to use.
"""

import os
from urllib.parse import parse_qs, urlsplit, urlunsplit

REDIS_DATABASES = 16  # redis-server's default
REDIS_VARIABLES = ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")


def redis_database(url: str) -> int:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or "db" in parse_qs(parts.query):
        raise ValueError(
            f"{url!r}: under pytest-xdist each worker takes a Redis database of its own, "
            "named in the URL's path (redis://host:port/N); run with TEST_WORKERS=0 otherwise"
        )
    return int(parts.path.strip("/") or 0)


def worker_redis_urls(urls: dict[str, str], worker: str) -> dict[str, str]:
    """``urls`` (variable: Redis URL) as xdist worker ``worker`` ("gw1") uses them: each
    database moved by the worker's number times the span of databases the URLs name
    (lowest to highest), so that the workers' spans never overlap and a broker on a
    database of its own never becomes another worker's cache."""
    bases = {variable: redis_database(url) for variable, url in urls.items()}
    span = max(bases.values(), default=0) - min(bases.values(), default=0) + 1
    offset = int(worker.removeprefix("gw")) * span
    moved = {}
    for variable, url in urls.items():
        database = bases[variable] + offset
        if database >= REDIS_DATABASES:
            raise ValueError(
                f"xdist worker {worker} would need Redis database {database}; redis-server "
                f"has {REDIS_DATABASES}: run fewer workers (TEST_WORKERS=N)"
            )
        moved[variable] = urlunsplit(urlsplit(url)._replace(path=f"/{database}"))
    return moved


os.environ.setdefault("DEBUG", "true")
if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    redis_urls = {name: os.environ[name] for name in REDIS_VARIABLES if os.environ.get(name)}
    os.environ.update(worker_redis_urls(redis_urls, worker))

from inventory_site.settings import *  # noqa: E402, F403
