"""The settings of the pytest process: the project's own, in development mode.

The project refuses to start without DEBUG or SECRET_KEY (a deployment that forgets them
must not fail open), so the test run turns DEBUG on for itself unless the environment says
otherwise, as `make run` does. Child processes the tests start get theirs from
``tests.processes.project_env``.

`make test` runs the suite in one pytest-xdist worker per core. pytest-django gives each
worker a test database of its own (``test_<name>_gw0``, ...); here each worker also takes
a Redis database of its own, the one ``REDIS_URL`` names plus the worker's number, so that
one worker's cache clear, Celery queue or worker never meets another's. The rewritten URL
is put back in the environment, where the tests read the broker their child processes
are to use.
"""

import os
from urllib.parse import urlsplit, urlunsplit

REDIS_DATABASES = 16  # redis-server's default


def worker_redis_url(url: str, worker: str) -> str:
    """``url`` with its database moved by the number of xdist worker ``worker`` ("gw1")."""
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    database = (base + int(worker.removeprefix("gw"))) % REDIS_DATABASES
    return urlunsplit(parts._replace(path=f"/{database}"))


os.environ.setdefault("DEBUG", "true")
if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        if os.environ.get(variable, "").startswith("redis://"):
            os.environ[variable] = worker_redis_url(os.environ[variable], worker)

from inventory_site.settings import *  # noqa: E402, F403
