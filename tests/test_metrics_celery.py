"""Celery at /metrics (inventory_site/celery_metrics.py): the queues' depth read from a
real broker at each scrape, and task failures and retries counted in the shared cache.

Both modes: the broker is a redis-server of the test's own (``private_broker``) and the
counts go through the configured cache (Redis in the services mode, local memory
embedded). tests/test_metrics_processes.py counts a failure in a real ``bin/run worker``.
"""

import time

import pytest
from celery import shared_task

from audit.tasks import relay_audit_outbox
from inventory_site.celery import app as celery_app
from stock.tasks import resume_bulk_jobs
from tests.metrics import by_label, read_metrics, sample

pytestmark = pytest.mark.django_db

FAILURES = "inventory_celery_task_failures_total"
RETRIES = "inventory_celery_task_retries_total"
QUEUE = "inventory_celery_queue_messages"
BROKER_UP = "inventory_celery_broker_up"


@shared_task(bind=True, max_retries=1)
def retried_once(self) -> str:
    """Asks to run again on its first attempt and succeeds on its second."""
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return "done"


def timed_scrape(client):
    started = time.monotonic()
    metrics = read_metrics(client)
    return metrics, time.monotonic() - started


# --- task failures and retries ---------------------------------------------------------


def test_a_task_that_raises_is_counted_under_its_name_and_no_other(client):
    before = read_metrics(client)

    # As a worker runs it: the error is recorded, not raised to the caller.
    result = relay_audit_outbox.apply(args=["an argument it does not take"], throw=False)
    after = read_metrics(client)

    increases = {
        task: count - by_label(before, FAILURES, "task")[task]
        for task, count in by_label(after, FAILURES, "task").items()
    }
    assert isinstance(result.result, TypeError)
    assert increases == {name: 0 for name in increases} | {"audit.tasks.relay_audit_outbox": 1}
    assert by_label(after, RETRIES, "task") == by_label(before, RETRIES, "task")


def test_every_project_task_has_its_counts_from_the_first_scrape(client):
    metrics = read_metrics(client)

    project_tasks = {name for name in celery_app.tasks if not name.startswith("celery.")} - {
        retried_once.name
    }
    assert set(by_label(metrics, FAILURES, "task")) >= project_tasks
    assert "stock.tasks.apply_bulk_job" in project_tasks
    assert set(by_label(metrics, RETRIES, "task")) == set(by_label(metrics, FAILURES, "task"))


def test_a_retry_is_counted_and_the_run_that_then_succeeds_is_no_failure(client):
    before = read_metrics(client)

    assert retried_once.apply(throw=False).get() == "done"
    after = read_metrics(client)

    def increase(name):
        return sample(after, name, task=retried_once.name) - sample(
            before, name, task=retried_once.name
        )

    assert (increase(RETRIES), increase(FAILURES)) == (1, 0)


def test_with_the_cache_down_a_task_fails_as_before_and_the_scrape_answers_without_counts(
    client, dead_cache
):
    result = relay_audit_outbox.apply(args=["an argument it does not take"], throw=False)

    assert isinstance(result.result, TypeError)
    metrics, seconds = timed_scrape(client)

    assert by_label(metrics, FAILURES, "task") == {}
    assert by_label(metrics, RETRIES, "task") == {}
    assert sample(metrics, "inventory_audit_backlog_events") == 0  # the rest is there
    assert seconds < 3


# --- queue depth -----------------------------------------------------------------------


def test_the_queue_depth_is_what_waits_in_the_broker(client, private_broker):
    empty = read_metrics(client)
    with celery_app.connection_for_write() as connection:
        for _ in range(3):
            resume_bulk_jobs.apply_async(connection=connection)

    waiting = read_metrics(client)

    assert (sample(empty, BROKER_UP), by_label(empty, QUEUE, "queue")) == (1, {"celery": 0})
    assert (sample(waiting, BROKER_UP), by_label(waiting, QUEUE, "queue")) == (1, {"celery": 3})
    assert private_broker.client().llen("celery") == 3


def test_with_the_broker_down_the_scrape_answers_broker_up_0_and_no_depth(client, dead_broker):
    metrics, seconds = timed_scrape(client)

    assert (metrics[(BROKER_UP, frozenset())], by_label(metrics, QUEUE, "queue")) == (0, {})
    assert sample(metrics, "inventory_audit_backlog_events") == 0
    # Not a speed check: kombu's own retries against a dead broker take far longer; 3 s
    # was missed on 2 loaded cores (3.2 s) while the answer was right.
    assert seconds < 6


def test_the_depth_is_read_again_once_the_broker_is_back(client, private_broker, settings):
    settings.CACHE_CIRCUIT_OPEN_SECONDS = 0  # the circuit lets the next scrape try at once
    private_broker.stop()
    assert read_metrics(client)[(BROKER_UP, frozenset())] == 0
    private_broker.start()

    metrics = read_metrics(client)

    assert metrics[(BROKER_UP, frozenset())] == 1
    assert by_label(metrics, QUEUE, "queue") == {"celery": 0}


def test_with_tasks_run_in_process_there_is_no_broker_to_report(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True

    metrics = read_metrics(client)

    assert by_label(metrics, QUEUE, "queue") == {}
    assert (BROKER_UP, frozenset()) not in metrics
