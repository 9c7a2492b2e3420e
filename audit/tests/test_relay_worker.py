"""The audit relay survives a lost broker and a killed worker (DESIGN.md invariant 4).

The deployment's own processes run as children on the test database: ``bin/run web``
(gunicorn), ``bin/run worker`` and ``bin/run beat``, with their broker on a private
redis-server that a test can stop and start. Writes commit whatever happens to the
broker; the outbox holds every change until a relay has moved it into the audit log,
in one transaction per batch; so every change ends up with exactly one audit event.
"""

import os
import re
import time
import uuid

import pytest
from django.db import transaction
from rest_framework.authtoken.models import Token

from audit.models import AuditEvent, AuditOutboxEntry
from audit.selectors import audit_chain_break
from stock.models import Movement, MovementKind
from stock.services import stock_receive
from stores.models import Role
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory
from tests.processes import (
    ProjectProcesses,
    RedisServer,
    free_port,
    http_get,
    post_json,
    project_env,
    url_of_the_test_database,
    wait_until,
)

pytestmark = [
    pytest.mark.services,
    pytest.mark.postgresql("the web, worker and beat children share the test database"),
    pytest.mark.skipif(not RedisServer.available(), reason="needs the redis-server binary"),
    pytest.mark.django_db(transaction=True),
]

SWEEP_INTERVAL = 2  # seconds between beat's relay sweeps


@pytest.fixture
def broker(tmp_path):
    """A private redis-server as the children's Celery broker, so it can be stopped."""
    (tmp_path / "broker").mkdir()
    server = RedisServer(free_port(), tmp_path / "broker")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def children(transactional_db, broker, tmp_path):
    """Start ``bin/run`` commands on the test database with the private broker."""
    (tmp_path / "static").mkdir()
    env = project_env(
        DATABASE_URL=url_of_the_test_database(),
        REDIS_URL=os.environ["REDIS_URL"],  # the cache, as in the services mode
        CELERY_BROKER_URL=f"redis://127.0.0.1:{broker.port}/0",
        CELERY_RESULT_BACKEND="",  # results are not used; none to lose either
        DEBUG="false",
        SECRET_KEY="audit-relay-worker-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1",
        CACHE_KEY_PREFIX=f"audit-relay-{uuid.uuid4().hex}",
        AUDIT_RELAY_INTERVAL_SECONDS=str(SWEEP_INTERVAL),
        API_RATE_PER_USER="100000/m",
        API_RATE_PER_IP="100000/m",
        WEB_CONCURRENCY="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        STATIC_ROOT=str(tmp_path / "static"),
        LOG_LEVEL="INFO",
    )
    processes = ProjectProcesses(env, tmp_path)
    try:
        yield processes
    finally:
        processes.stop_all()


def worker_args(name: str) -> list[str]:
    return ["worker", "--hostname", f"{name}-{uuid.uuid4().hex[:8]}@%h", "--concurrency", "1"]


def gauge(port: int, name: str) -> float:
    """One gauge's value from the web server's /metrics."""
    body = http_get(port, "/metrics")
    match = re.search(rf"^{name} (\S+)$", body, re.MULTILINE)
    assert match, f"{name} not in /metrics:\n{body[-2000:]}"
    return float(match[1])


def assert_one_event_per_movement(store, kind: MovementKind, expected: int) -> None:
    movements = set(Movement.objects.filter(store=store, kind=kind).values_list("pk", flat=True))
    events = list(
        AuditEvent.objects.filter(store_id=store.pk, action=f"stock.{kind}").values_list(
            "object_id", flat=True
        )
    )
    assert len(movements) == expected
    assert len(events) == expected, f"{len(events)} events for {expected} movements"
    assert {int(object_id) for object_id in events} == movements
    sequences = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))
    assert audit_chain_break() is None


WRITES = 200


def test_broker_down_during_200_writes_every_event_arrives_exactly_once(children, broker):
    store, product = StoreFactory(), ProductFactory()
    manager = UserFactory()
    MembershipFactory(user=manager, store=store, role=Role.MANAGER)
    token = Token.objects.create(user=manager).key
    children.start("worker", *worker_args("audit-broker-down"))
    beat_log = children.start("beat", "beat")
    web = children.start_web()
    path = f"/api/v1/stores/{store.code}/stock/{product.sku}/receive/"

    statuses = []
    for write in range(WRITES):
        if write == 50:
            broker.stop()  # messages in it are lost with it: it keeps nothing on disk
        if write == 150:
            backlog = gauge(web, "inventory_audit_backlog_events")
            lag = gauge(web, "inventory_audit_relay_lag_seconds")
            broker.start()
        statuses.append(post_json(web, path, {"quantity": 1}, token)[0])

    # Every write committed, broker or not.
    assert statuses == [200] * WRITES
    # While the broker was down the entries waited, and /metrics showed it.
    assert backlog >= 1 and lag > 0, (backlog, lag)
    # Nothing but a sweep (or a later write's message) can relay what the outage left.
    assert wait_until(
        lambda: (
            not AuditOutboxEntry.objects.exists()
            and AuditEvent.objects.filter(store_id=store.pk).count() >= WRITES
        ),
        timeout=30,
        interval=0.2,
    ), (AuditOutboxEntry.objects.count(), beat_log.read_text()[-2000:])
    time.sleep(2 * SWEEP_INTERVAL)  # more sweeps run: still none twice

    assert_one_event_per_movement(store, MovementKind.RECEIVE, WRITES)
    assert gauge(web, "inventory_audit_backlog_events") == 0
    assert "audit relay not sent" in (children.directory / "web.log").read_text()


BURST = 20
# Long enough that the burst fits inside one interval on a busy machine: 20 writes took
# 1.3 s in CI with a neighbouring test worker on the other core.
SEND_INTERVAL = 4.0


def test_the_last_events_of_a_burst_are_relayed_within_a_send_interval_without_beat(children):
    """No beat runs: only the web process's messages relay. Its burst of writes falls
    inside one send interval, so the first write's message goes at once and the rest
    must be carried by the message sent when the interval ends."""
    store, product = StoreFactory(), ProductFactory()
    manager = UserFactory()
    MembershipFactory(user=manager, store=store, role=Role.MANAGER)
    token = Token.objects.create(user=manager).key
    children.env = {
        **children.env,
        "WEB_CONCURRENCY": "1",  # one process, one send schedule
        "AUDIT_RELAY_SEND_INTERVAL_SECONDS": str(SEND_INTERVAL),
    }
    worker_log = children.start("worker", *worker_args("audit-burst"))
    assert wait_until(lambda: " ready." in worker_log.read_text(), timeout=30), (
        worker_log.read_text()[-2000:]
    )
    web = children.start_web()
    path = f"/api/v1/stores/{store.code}/stock/{product.sku}/receive/"

    started = time.monotonic()
    statuses = [post_json(web, path, {"quantity": 1}, token)[0] for _ in range(BURST)]
    last_answer = time.monotonic()

    assert statuses == [200] * BURST
    assert last_answer - started < SEND_INTERVAL, "the burst outlasted one send interval"
    assert wait_until(
        lambda: AuditEvent.objects.filter(store_id=store.pk).count() == BURST,
        timeout=SEND_INTERVAL + 15,
        interval=0.05,
    ), (AuditOutboxEntry.objects.count(), worker_log.read_text()[-2000:])
    relayed_after = time.monotonic() - last_answer
    assert relayed_after < SEND_INTERVAL + 1, f"the last events took {relayed_after:.1f} s"
    assert_one_event_per_movement(store, MovementKind.RECEIVE, BURST)


ENTRIES = 4000
BATCH = 10


def test_a_worker_killed_while_relaying_loses_and_doubles_nothing(children):
    store, product = StoreFactory(), ProductFactory()
    with transaction.atomic():  # one commit: the backlog exists before any worker runs
        for _ in range(ENTRIES):
            stock_receive(store=store, product=product, quantity=1)
    assert AuditOutboxEntry.objects.count() == ENTRIES
    children.env = {**children.env, "AUDIT_RELAY_BATCH_SIZE": str(BATCH)}

    # The worker's start-up relay works through the backlog, one batch per transaction.
    children.start("worker", *worker_args("audit-killed"))
    assert wait_until(lambda: AuditEvent.objects.exists(), timeout=30, interval=0.01), (
        children.directory / "worker.log"
    ).read_text()
    children.kill("worker")

    relayed = AuditEvent.objects.count()
    assert 0 < relayed < ENTRIES, f"{relayed} of {ENTRIES} relayed: not killed mid-relay"
    # Only whole batches committed; the one in flight left its entries in the outbox.
    assert relayed % BATCH == 0
    assert relayed + AuditOutboxEntry.objects.count() == ENTRIES

    children.start("worker-again", *worker_args("audit-restarted"))
    assert wait_until(lambda: not AuditOutboxEntry.objects.exists(), timeout=60, interval=0.2), (
        children.directory / "worker-again.log"
    ).read_text()[-3000:]
    assert_one_event_per_movement(store, MovementKind.RECEIVE, ENTRIES)
