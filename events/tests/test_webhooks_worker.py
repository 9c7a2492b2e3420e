"""A slow receiver never delays a stock write: the write's commit only sends a message,
and a real worker process (``bin/run worker``) makes the request. The receiver here holds
every request until the test lets it go (the worker waits up to 120 s for an answer);
writes made while it holds one, before and after the worker is stuck in it, finish in
far less, which they could not if they waited for it."""

import os
import threading
import uuid

import pytest
from django.db import connection

from events.models import DeliveryStatus, WebhookDelivery
from events.webhooks.services import subscription_create
from stock.services import stock_receive
from tests.factories import ProductFactory, StoreFactory
from tests.processes import ProjectProcesses, project_env, url_of_the_test_database, wait_until

pytestmark = [
    pytest.mark.services,
    pytest.mark.postgresql("the worker shares the test database"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def worker(transactional_db, tmp_path):
    env = project_env(
        DATABASE_URL=url_of_the_test_database(),
        REDIS_URL=os.environ["REDIS_URL"],
        CELERY_RESULT_BACKEND="",
        CACHE_KEY_PREFIX=f"webhooks-{uuid.uuid4().hex}",
        WEBHOOK_ALLOW_PRIVATE_NETWORKS="true",
        WEBHOOK_TIMEOUT_SECONDS="120",
        LOG_LEVEL="INFO",
    )
    processes = ProjectProcesses(env, tmp_path)
    log = processes.start(
        "worker",
        "worker",
        "--hostname",
        f"webhooks-{uuid.uuid4().hex[:8]}@%h",
        "--concurrency",
        "1",
    )
    try:
        assert wait_until(lambda: " ready." in log.read_text(), timeout=60), log.read_text()[-2000:]
        yield log
    finally:
        processes.stop_all()


def test_stock_writes_finish_while_the_receiver_still_holds_a_delivery(settings, receiver, worker):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    store, product = StoreFactory(), ProductFactory()
    subscription_create(store=store, url=receiver.url, event_types=[], actor=None)
    receiver.hold.clear()

    def write() -> bool:
        """A stock change in a thread of its own: the service writes the level and its
        event, and sends the signal once committed. Whether it finished within 20 s."""
        written = threading.Event()

        def run():
            try:
                stock_receive(store=store, product=product, quantity=5)
                written.set()
            finally:
                connection.close()

        writer = threading.Thread(target=run)
        writer.start()
        writer.join(timeout=20)
        return written.is_set() and not writer.is_alive()

    try:
        assert write()
        # The worker's request reaches the receiver, which holds it: the worker is stuck.
        assert wait_until(lambda: receiver.waiting == 1, timeout=30), worker.read_text()[-2000:]
        assert all(write() for _ in range(3))
        assert receiver.waiting == 1 and not receiver.hold.is_set()
    finally:
        receiver.hold.set()
    assert wait_until(
        lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 4,
        timeout=30,
    ), worker.read_text()[-2000:]
    assert receiver.seqs() == [1, 2, 3, 4]
