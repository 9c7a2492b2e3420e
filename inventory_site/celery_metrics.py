"""Celery at /metrics: the queues' depth, read from the broker at each scrape, and task
failures and retries, counted by the workers in the shared cache.

A worker runs in another process, often on another host, so its own prometheus_client
counters would never reach the web's /metrics. The ``task_failure`` and ``task_retry``
receivers count into the cache (Redis: one key per task and outcome, no TTL, so the
cache's ``volatile-lru`` policy never evicts it) and the scrape reads them back. They
are totals of the whole deployment: every web process reports the same figures.

Neither the broker nor Redis being down fails a scrape: each is asked through its
circuit (``inventory_site.cache_outage``) with the socket timeouts of the settings, and
a failure shows as ``inventory_celery_broker_up 0`` or as missing task counts.
"""

import logging

from amqp.exceptions import ChannelError
from celery.signals import task_failure, task_retry
from django.conf import settings
from django.core.cache import cache
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .cache_outage import CACHE_ERRORS, broker_circuit, cache_circuit

logger = logging.getLogger(__name__)

OUTCOMES = ("failures", "retries")
# The reply code of a passive declare of a queue that does not exist.
NOT_FOUND = "404"  # kombu's virtual transports give it as a string, amqp as a number


def task_outcome_key(outcome: str, task_name: str) -> str:
    return f"celery-task-{outcome}:{task_name}"


def count_task_outcome(outcome: str, task_name: str) -> None:
    """Add one to the shared count. A cache that is down loses this one count (logged);
    the task's own outcome is untouched."""
    key = task_outcome_key(outcome, task_name)
    try:
        with cache_circuit:
            cache.add(key, 0, timeout=None)
            cache.incr(key)
    except CACHE_ERRORS as error:
        logger.warning(
            "task %s of %s not counted: the cache failed (%r)", outcome, task_name, error
        )


@task_failure.connect
def count_task_failure(sender=None, **kwargs):
    count_task_outcome("failures", sender.name)


@task_retry.connect
def count_task_retry(sender=None, **kwargs):
    count_task_outcome("retries", sender.name)


def project_task_names(app) -> list[str]:
    """The project's tasks (Celery's own ``celery.*`` left out): web and workers run the
    same code, so these are the names a worker can count. A web process has imported
    only the tasks it sends; the apps' ``tasks`` modules are imported as a worker does."""
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if not name.startswith("celery."))


class TaskOutcomeCollector:
    def __init__(self, app):
        self.app = app
        self.task_names = None  # read at the first scrape, once the apps are loaded

    def collect(self):
        if self.task_names is None:
            self.task_names = project_task_names(self.app)
        failures = CounterMetricFamily(
            "inventory_celery_task_failures",
            "Tasks that raised in a worker, by task, summed over every worker since the "
            "cache was last emptied.",
            labels=["task"],
        )
        retries = CounterMetricFamily(
            "inventory_celery_task_retries",
            "Tasks a worker scheduled to run again (Task.retry), by task.",
            labels=["task"],
        )
        names = self.task_names
        keys = {task_outcome_key(outcome, name) for outcome in OUTCOMES for name in names}
        try:
            with cache_circuit:
                counts = cache.get_many(keys)
        except CACHE_ERRORS as error:
            logger.warning("task failure counts unavailable: the cache failed (%r)", error)
        else:
            for family, outcome in ((failures, "failures"), (retries, "retries")):
                for name in names:
                    family.add_metric([name], counts.get(task_outcome_key(outcome, name), 0))
        yield failures
        yield retries

    def describe(self):
        return []


class QueueDepthCollector:
    """Messages waiting in each queue the workers consume, as the broker counts them
    (Redis: the queue's lists, priorities included; a message a worker has taken is no
    longer waiting). Embedded, tasks run in-process and there is no broker to ask."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        up = GaugeMetricFamily(
            "inventory_celery_broker_up",
            "1 when the Celery broker answered this scrape's queue reads, 0 when it did not.",
        )
        depth = GaugeMetricFamily(
            "inventory_celery_queue_messages",
            "Messages waiting in the queue for a worker; absent while the broker is down.",
            labels=["queue"],
        )
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            try:
                waiting = self.read_queues()
            except Exception as error:  # noqa: BLE001 - kombu raises per transport
                logger.warning("queue depth unavailable: the broker failed (%r)", error)
                up.add_metric([], 0)
            else:
                up.add_metric([], 1)
                for queue, messages in waiting.items():
                    depth.add_metric([queue], messages)
        yield up
        yield depth

    def read_queues(self) -> dict[str, int]:
        waiting = {}
        with broker_circuit, self.app.connection_for_read() as connection:
            for queue in self.app.amqp.queues:
                # A channel per queue: AMQP closes the channel a passive declare failed on.
                with connection.channel() as channel:
                    try:
                        declared = channel.queue_declare(queue=queue, passive=True)
                    except ChannelError as error:
                        if str(error.reply_code) != NOT_FOUND:
                            raise
                        # Redis keeps no empty list; AMQP: no worker declared it yet.
                        waiting[queue] = 0
                    else:
                        waiting[queue] = declared.message_count
        return waiting

    def describe(self):
        return []
