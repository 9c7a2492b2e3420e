"""A real ``bin/run worker`` keeps its database session from task to task, as a web
worker keeps its own from request to request (CONN_MAX_AGE), and replaces one that
broke: Celery's Django fix-up would close it after every task, so that each task paid
for a new PostgreSQL session (``inventory_site/celery.py``)."""

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from inventory_site.celery import app as celery_app
from tests.processes import (
    ProjectProcesses,
    project_env,
    redis_url,
    url_of_the_test_database,
    wait_until,
)

pytestmark = [
    pytest.mark.services,
    pytest.mark.postgresql("the worker's sessions are read from pg_stat_activity"),
    pytest.mark.django_db(transaction=True),
]


@dataclass
class Worker:
    log: Path
    application_name: str

    def finished(self) -> int:
        """How many tasks it has run to the end."""
        return self.log.read_text().count(" succeeded in ")

    def run_tasks(self, count: int) -> None:
        """Send ``count`` tasks that query the database (an audit relay) and wait until
        the worker has run them."""
        before = self.finished()
        with celery_app.connection_for_write() as broker:
            for _ in range(count):
                celery_app.send_task("audit.tasks.relay_audit_outbox", connection=broker)
        assert wait_until(lambda: self.finished() >= before + count, timeout=30), (
            self.log.read_text()[-3000:]
        )

    def sessions(self) -> list[int]:
        """The process ids of its PostgreSQL sessions open now."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s ORDER BY pid",
                [self.application_name],
            )
            return [pid for (pid,) in cursor.fetchall()]


@pytest.fixture
def worker(tmp_path, private_broker):
    """One worker process (concurrency 1) on the test database, its sessions named, on
    a broker of the test's own: it runs the tasks the test sends and its start-up's."""
    application_name = f"worker-{uuid.uuid4().hex[:12]}"
    env = project_env(
        DATABASE_URL=f"{url_of_the_test_database()}?application_name={application_name}",
        REDIS_URL=redis_url(),
        CELERY_BROKER_URL=celery_app.conf.broker_url,
        CELERY_RESULT_BACKEND="",
        CACHE_KEY_PREFIX=f"worker-connections-{uuid.uuid4().hex}",
        LOG_LEVEL="INFO",
    )
    processes = ProjectProcesses(env, tmp_path)
    log = processes.start(
        "worker", "worker", "--concurrency", "1", "--hostname", f"{application_name}@%h"
    )
    try:
        assert wait_until(lambda: " ready." in log.read_text(), timeout=60), log.read_text()[-2000:]
        yield Worker(log, application_name)
    finally:
        processes.stop_all()


def test_the_worker_keeps_its_database_session_from_task_to_task(worker):
    worker.run_tasks(3)
    first = worker.sessions()

    worker.run_tasks(5)

    assert len(first) == 1
    assert worker.sessions() == first


def test_a_session_that_broke_between_tasks_is_replaced_and_no_task_fails(worker):
    worker.run_tasks(1)
    [broken] = worker.sessions()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [broken])

    worker.run_tasks(3)

    assert len(worker.sessions()) == 1
    assert worker.sessions() != [broken]
    assert " raised unexpected" not in worker.log.read_text()
