"""A listener's queue (``events.stream.hub.Listener``): what a stream is told when its
client reads slower than its store's events arrive, and that a closed stream stays
closed."""

import pytest

from events.stream import hub
from events.stream.hub import CLOSED, MISSED, Heard, Listener


@pytest.fixture
def listener(monkeypatch) -> Listener:
    monkeypatch.setattr(hub, "QUEUE_SIZE", 3)
    return Listener("store-1")


def queued(listener: Listener) -> list:
    items = []
    while not listener.queue.empty():
        items.append(listener.queue.get_nowait())
    return items


def event(seq: int) -> Heard:
    return Heard(seq, b"id: %d\n\n" % seq)


def test_an_event_that_finds_the_queue_full_replaces_it_with_missed(listener):
    for seq in (1, 2, 3):
        listener.deliver(event(seq))

    listener.deliver(event(4))

    assert queued(listener) == [MISSED]


def test_closed_that_finds_the_queue_full_replaces_it(listener):
    for seq in (1, 2, 3):
        listener.deliver(event(seq))

    listener.deliver(CLOSED)

    assert queued(listener) == [CLOSED]
    assert listener.closed


def test_closed_in_the_last_slot_is_not_replaced_by_a_later_event(listener):
    listener.deliver(event(1))
    listener.deliver(event(2))
    listener.deliver(CLOSED)  # the last slot

    listener.deliver(event(3))
    listener.deliver(MISSED)

    assert queued(listener) == [event(1), event(2), CLOSED]


def test_nothing_is_queued_after_closed(listener):
    listener.deliver(CLOSED)

    listener.deliver(event(1))
    listener.deliver(MISSED)
    listener.deliver(CLOSED)

    assert queued(listener) == [CLOSED]
