"""A burst of commits wakes the worker once per store, not once per commit; and without
an answer from Redis every message is sent (a marker only ever saves work)."""

import time

import pytest

from events.webhooks import wakeups
from events.webhooks.services import send_deliver, send_dispatch
from inventory_site.cache_outage import broker_circuit, reset_circuits
from tests.processes import free_port, redis_cache

pytestmark = pytest.mark.services("the markers live in Redis")


def test_a_message_is_sent_only_when_none_is_waiting_and_again_once_its_task_runs():
    assert wakeups.to_wake(wakeups.SUBSCRIPTION, [7, 8]) == [7, 8]
    assert wakeups.to_wake(wakeups.SUBSCRIPTION, [8, 9, 8]) == [9]  # 8 has a message waiting
    assert wakeups.to_wake(wakeups.STORE, [8]) == [8]  # another kind of message

    wakeups.woken(wakeups.SUBSCRIPTION, [8])  # its task runs: what commits now needs a message

    assert wakeups.to_wake(wakeups.SUBSCRIPTION, [7, 8]) == [8]


def test_a_marker_whose_message_was_lost_expires(settings):
    assert wakeups.to_wake(wakeups.SUBSCRIPTION, [3]) == [3]
    from django_redis import get_redis_connection

    ttl_ms = get_redis_connection("default").pttl(wakeups._marker(wakeups.SUBSCRIPTION, 3))
    lifetime_ms = 1000 * (settings.WEBHOOK_COALESCE_SECONDS + wakeups.MARKER_SECONDS)
    assert 1000 * settings.WEBHOOK_COALESCE_SECONDS < ttl_ms <= lifetime_ms


def test_without_redis_every_message_is_sent(settings):
    settings.CACHES = redis_cache(free_port())  # nothing listens there
    try:
        assert wakeups.to_wake(wakeups.SUBSCRIPTION, [1, 2]) == [1, 2]
        assert wakeups.to_wake(wakeups.SUBSCRIPTION, [1, 2]) == [1, 2]
        wakeups.woken(wakeups.SUBSCRIPTION, [1])  # and clearing does not raise
    finally:
        reset_circuits()


def test_a_marker_whose_message_could_not_be_sent_is_cleared(settings):
    """The broker is down (its circuit open): nothing waits, so the next commit must
    be free to send, not held back for the marker's lifetime."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    broker_circuit.failed(ConnectionError("the broker is down"))
    try:
        send_deliver(7)
        send_dispatch([7])
    finally:
        reset_circuits()

    assert wakeups.to_wake(wakeups.SUBSCRIPTION, [7]) == [7]
    assert wakeups.to_wake(wakeups.STORE, [7]) == [7]


def redis_markers():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def test_until_its_message_is_due_a_process_needs_not_ask_redis_again():
    """The message covers what commits before its ETA: the marker gone from Redis (as
    if nobody had asked) changes nothing until then; after it, Redis is asked again."""
    assert wakeups.to_wake(wakeups.SUBSCRIPTION, [7], countdown=0.3) == [7]
    redis_markers().delete(wakeups._marker(wakeups.SUBSCRIPTION, 7))

    assert wakeups.to_wake(wakeups.SUBSCRIPTION, [7], countdown=0.3) == []

    time.sleep(0.3)
    assert wakeups.to_wake(wakeups.SUBSCRIPTION, [7], countdown=0.3) == [7]


def test_a_marker_another_process_set_is_learned_with_its_message_s_due_time():
    due_ms = round(1000 * (time.time() + 0.3))
    redis_markers().set(wakeups._marker(wakeups.SUBSCRIPTION, 8), due_ms, px=5000)

    assert wakeups.to_wake(wakeups.SUBSCRIPTION, [8]) == []
    redis_markers().delete(wakeups._marker(wakeups.SUBSCRIPTION, 8))
    assert wakeups.to_wake(wakeups.SUBSCRIPTION, [8]) == []  # still covered

    time.sleep(0.3)
    assert wakeups.to_wake(wakeups.SUBSCRIPTION, [8]) == [8]


def test_a_message_that_could_not_be_sent_covers_nothing():
    assert wakeups.to_wake(wakeups.SUBSCRIPTION, [9], countdown=5) == [9]

    wakeups.woken(wakeups.SUBSCRIPTION, [9])  # what the sender does when sending failed

    assert wakeups.to_wake(wakeups.SUBSCRIPTION, [9], countdown=5) == [9]
