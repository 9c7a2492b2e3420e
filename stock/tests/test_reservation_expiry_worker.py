"""A checkout hold left to time out is expired by the deployment's own beat and worker.

``bin/run worker`` and ``bin/run beat`` run as child processes on the test database, with
the sweep every RESERVATION_EXPIRY_INTERVAL_SECONDS. The hold is made only once the
worker's start-up sweep has run and beat has sent its first sweep, so the only thing that
can expire it is a later beat sweep, and it must do so within one interval of the hold
falling due.
"""

import os
import re
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.utils import timezone

from stock.models import Movement, MovementKind, Reservation, ReservationStatus, StockLevel
from stock.selectors import stock_levels_with_ledger_drift, stock_levels_with_reservation_drift
from stock.services import StockLine, reservation_create, stock_receive
from tests.factories import ProductFactory, StoreFactory
from tests.processes import read, redis_url, wait_until

pytestmark = [
    pytest.mark.services,
    pytest.mark.postgresql,
    pytest.mark.django_db(transaction=True),
]

INTERVAL = 2  # seconds between beat sweeps
TTL = 1  # seconds the hold lasts
SLACK = 2  # seconds for beat to publish and the worker to run the sweep
SWEEP_EVERY_INTERVAL = {"RESERVATION_EXPIRY_INTERVAL_SECONDS": str(INTERVAL)}
QUEUE = "celery"  # Celery's default queue: beat and worker_ready send there

TASK_RECEIVED = re.compile(r"Task stock\.tasks\.\w+\[([\w-]+)\] received")
TASK_ENDED = re.compile(r"Task stock\.tasks\.\w+\[([\w-]+)\] (?:succeeded|failed|raised)")


def worker_is_idle(log: Path, broker: redis.Redis) -> bool:
    """Nothing is waiting in the queue and every task the worker took has ended."""
    text = read(log)
    received, ended = set(TASK_RECEIVED.findall(text)), set(TASK_ENDED.findall(text))
    return broker.llen(QUEUE) == 0 and received <= ended


def test_beat_and_a_worker_expire_a_due_hold_within_one_sweep_interval(start):
    store, product = StoreFactory(), ProductFactory()
    stock_receive(store=store, product=product, quantity=5)
    # Fell due while no worker ran: the worker's start-up sweep is for holds like this.
    left_over = reservation_create(store=store, lines=[StockLine(product, 1)], ttl_seconds=60)
    Reservation.objects.filter(pk=left_over.pk).update(expires_at=timezone.now())
    broker = redis.Redis.from_url(redis_url())
    broker.delete(QUEUE)  # no message an earlier run left behind can expire it first
    hostname = f"expiry-test-{uuid.uuid4().hex[:8]}@%h"

    worker_log = start("worker", "--hostname", hostname, **SWEEP_EVERY_INTERVAL)

    # "ready." is logged after worker_ready has sent the start-up sweep; once the queue
    # is empty and the worker idle, it has run.
    ready = f"{hostname.replace('%h', os.uname().nodename)} ready."
    assert wait_until(lambda: ready in read(worker_log), timeout=30, interval=0.2), read(worker_log)
    assert wait_until(
        lambda: (
            worker_is_idle(worker_log, broker)
            and Reservation.objects.get(pk=left_over.pk).status != ReservationStatus.ACTIVE
        ),
        timeout=15,
        interval=0.2,
    ), read(worker_log)
    left_over.refresh_from_db()
    assert left_over.status == ReservationStatus.EXPIRED
    assert left_over.closed_via == "worker start"

    beat_log = start("beat", **SWEEP_EVERY_INTERVAL)
    sent = "Sending due task expire-reservations (stock.tasks.expire_reservations)"
    assert wait_until(lambda: sent in read(beat_log), timeout=20, interval=0.2), read(beat_log)

    hold = reservation_create(store=store, lines=[StockLine(product, 2)], ttl_seconds=TTL)
    made = time.monotonic()
    assert StockLevel.objects.get(store=store, product=product).reserved == 2

    expired = wait_until(
        lambda: Reservation.objects.get(pk=hold.pk).status != ReservationStatus.ACTIVE,
        timeout=TTL + INTERVAL + SLACK,
        interval=0.1,
    )
    took = time.monotonic() - made

    hold.refresh_from_db()
    assert expired, (
        f"still {hold.status} after {took:.1f}s\n{read(beat_log)[-2000:]}\n"
        f"{read(worker_log)[-3000:]}"
    )
    assert (hold.status, hold.closed_via, hold.closed_by) == (
        ReservationStatus.EXPIRED,
        "beat sweep",
        None,
    )
    assert hold.expires_at <= hold.closed_at
    assert (hold.closed_at - hold.expires_at).total_seconds() <= INTERVAL + SLACK
    expiry = Movement.objects.get(reference=f"reservation:{hold.pk}", kind=MovementKind.EXPIRE)
    assert (expiry.delta_on_hand, expiry.delta_reserved, expiry.reason) == (0, -2, "beat sweep")
    assert Movement.objects.filter(reference=f"reservation:{hold.pk}").count() == 2
    level = StockLevel.objects.get(store=store, product=product)
    assert (level.on_hand, level.reserved) == (5, 0)
    assert list(stock_levels_with_ledger_drift()) == []
    assert list(stock_levels_with_reservation_drift()) == []
