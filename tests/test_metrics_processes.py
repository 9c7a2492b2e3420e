"""/metrics of a real ``bin/run web`` (gunicorn, multiprocess): each replica's state,
and a task failure counted by a real ``bin/run worker`` reaching the web's /metrics.

The replicas are real PostgreSQL addresses: the test database itself (a primary: lag 0),
a port where nothing listens, and one that accepts connections and never answers.
"""

import socket
import time
import uuid

import pytest

from inventory_site.celery import app as celery_app
from tests.metrics import by_label, parse, sample
from tests.processes import (
    ProjectProcesses,
    free_port,
    http_get,
    project_env,
    redis_url,
    url_of_the_test_database,
    wait_until,
)

pytestmark = [
    pytest.mark.services,
    pytest.mark.postgresql("the processes share the test database"),
    pytest.mark.django_db(transaction=True),
]

FAILURES = "inventory_celery_task_failures_total"


@pytest.fixture
def processes(tmp_path):
    """``bin/run`` commands on the test database and the services' Redis, with a cache
    key prefix of their own, so every shared count starts at zero."""
    (tmp_path / "static").mkdir()
    env = project_env(
        DATABASE_URL=url_of_the_test_database(),
        REDIS_URL=redis_url(),
        CELERY_RESULT_BACKEND="",
        DEBUG="false",
        SECRET_KEY="metrics-processes-" + uuid.uuid4().hex * 2,
        ALLOWED_HOSTS="127.0.0.1",
        CACHE_KEY_PREFIX=f"metrics-{uuid.uuid4().hex}",
        WEB_CONCURRENCY="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        STATIC_ROOT=str(tmp_path / "static"),
        LOG_LEVEL="INFO",
    )
    started = ProjectProcesses(env, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def silent_postgresql():
    """A port that accepts TCP connections (the kernel's backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def scrape(port: int):
    started = time.monotonic()
    body = http_get(port, "/metrics")  # raises on any status but 2xx
    return parse(body), time.monotonic() - started


def test_each_replica_shows_up_or_down_and_a_down_one_neither_fails_nor_holds_the_scrape(
    processes, silent_postgresql
):
    closed = free_port()
    processes.env = {
        **processes.env,
        "DATABASE_REPLICA_URLS": ",".join(
            [
                url_of_the_test_database(),
                f"postgres://inventory@127.0.0.1:{closed}/inventory",
                f"postgres://inventory@127.0.0.1:{silent_postgresql}/inventory",
            ]
        ),
        "REPLICA_CONNECT_TIMEOUT": "1",
    }
    port = processes.start_web()

    for _ in range(3):  # each scrape asks again, in either gunicorn worker
        metrics, seconds = scrape(port)

        assert by_label(metrics, "inventory_replica_up", "replica") == {
            "replica_1": 1,
            "replica_2": 0,
            "replica_3": 0,
        }
        assert by_label(metrics, "inventory_replica_lag_seconds", "replica") == {"replica_1": 0}
        # The silent replica costs its connect timeout (1 s), the closed port nothing.
        assert seconds < 3, f"the scrape took {seconds:.1f} s"


def test_a_task_failing_in_a_real_worker_is_counted_at_the_webs_metrics(processes, private_broker):
    """The broker is the test's own, so the worker runs nothing but what it sends."""
    processes.env = {**processes.env, "CELERY_BROKER_URL": celery_app.conf.broker_url}
    port = processes.start_web()
    log = processes.start("worker", "worker", "--concurrency", "1", "--hostname", "m-%h")
    before, _ = scrape(port)
    assert set(by_label(before, FAILURES, "task").values()) == {0}

    # A real failure in the worker: the task is called with an argument it does not take.
    with celery_app.connection_for_write() as connection:
        celery_app.send_task(
            "audit.tasks.relay_audit_outbox", args=["unexpected"], connection=connection
        )

    def counted() -> bool:
        return sample(scrape(port)[0], FAILURES, task="audit.tasks.relay_audit_outbox") > 0

    assert wait_until(counted, timeout=30), log.read_text()[-3000:]
    after, _ = scrape(port)
    assert by_label(after, FAILURES, "task") == {
        name: 0 for name in by_label(before, FAILURES, "task")
    } | {"audit.tasks.relay_audit_outbox": 1}
    assert "TypeError('relay_audit_outbox() takes 0 positional arguments" in log.read_text()

    # Once the worker has taken every message (its start-up sweeps send some too), the
    # queue reads empty.
    def drained() -> bool:
        depth = by_label(scrape(port)[0], "inventory_celery_queue_messages", "queue")
        return depth == {"celery": 0}

    assert wait_until(drained, timeout=30), log.read_text()[-3000:]
