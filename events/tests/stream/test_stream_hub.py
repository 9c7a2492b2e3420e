"""A listener's queue (``events.stream.hub.Listener``): what a stream is told when its
client reads slower than its store's events arrive, and that a closed stream stays
closed."""

import asyncio

import pytest
import redis
import redis.asyncio

from events import channels
from events.stream import hub
from events.stream.hub import CLOSED, MISSED, Heard, Listener
from tests.processes import free_port


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


def test_catching_up_spares_the_streams_that_heard_the_last_event_and_wakes_the_others():
    """The periodic check found the log ending at 5: a stream with 5 queued (its process
    slow to send it) reads no log; one whose publish of 5 was lost does."""

    async def main():
        store_hub = hub.Hub("redis://127.0.0.1:1/0")  # no connection needed
        heard_it, lost_it = Listener("store-1"), Listener("store-1")
        store_hub.channels["store-1"] = hub._Channel(listeners={heard_it, lost_it})
        for seq in (4, 5):
            heard_it.deliver(event(seq))
        lost_it.deliver(event(4))

        woken = store_hub.catch_up("store-1", 5)

        return woken, queued(heard_it), queued(lost_it)

    woken, heard_it, lost_it = asyncio.run(main())

    assert woken == 1
    assert heard_it == [event(4), event(5)]
    assert lost_it == [event(4), MISSED]


# --- The hub's one connection to Redis -----------------------------------------------


@pytest.mark.services("the hub subscribes on a real Redis")
def test_streams_of_two_stores_opening_at_once_are_both_subscribed(settings):
    """The first SUBSCRIBE of each store's channel, sent together: both confirmed, on
    the one connection the hub reads (redis-py would connect twice, and the channel
    subscribed on the connection it dropped never heard back)."""

    async def main():
        the_hub = hub.Hub(channels.redis_url())
        try:
            listeners = await asyncio.wait_for(
                asyncio.gather(*(the_hub.join(f"hub-test:{n}") for n in range(4))), timeout=5
            )
            publisher = redis.asyncio.Redis.from_url(channels.redis_url())
            for n in range(4):
                await publisher.publish(f"hub-test:{n}", b'{"seq": 1, "type": "stock.changed"}')
            await publisher.aclose()
            heard = [await asyncio.wait_for(one.queue.get(), timeout=5) for one in listeners]
            return [item.seq for item in heard]
        finally:
            for listener in list(the_hub.listeners()):
                await the_hub.leave(listener)
            if the_hub.pubsub is not None:
                await the_hub.pubsub.aclose()

    assert asyncio.run(main()) == [1, 1, 1, 1]


def test_a_hub_that_cannot_reach_redis_raises_a_redis_error_and_tries_again_next_time():
    async def main():
        the_hub = hub.Hub(f"redis://127.0.0.1:{free_port()}/0")
        for _ in range(2):
            with pytest.raises(redis.RedisError):
                await the_hub.join("hub-test:down")
        return the_hub

    the_hub = asyncio.run(main())
    assert the_hub.pubsub is None and the_hub.channels == {}
