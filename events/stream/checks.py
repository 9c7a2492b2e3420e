"""The events process's periodic pass over its open streams, every
EVENTS_STREAM_CHECK_SECONDS while it has any.

- Catch-up: a stream learns of events it did not hear when its store's next event
  arrives; events that are followed by none (a seeding, which publishes nothing; the
  last publish of a burst lost while Redis failed) would wait for it. The pass reads the
  last seq of every store with open streams and, EVENTS_STREAM_GAP_SECONDS later, wakes
  each stream that has neither sent nor heard that far: it reads the gap from the log
  (one that heard it sends it, however late). The wait
  spares the streams of a store being written to a log read each for events whose
  publish was on its way at the read. Each stream is compared on its own: another
  stream of the store that read the log has not sent it to this one.
- Access: a stream is authorized when it opens. The pass asks again, for every open
  stream at once, whether its user may still view the store with the credentials it
  came with, its token or its session (``log.viewers_with_access``); a stream that may
  not ends, and its client's reconnection is refused.

One worker thread makes the pass's three queries (four when a browser's session opened
a stream) in one of the process's database slots and closes its connection
(``log.in_thread``): no connection is held between passes.
"""

import asyncio
import contextvars
import logging

from django.conf import settings

from . import log
from .hub import CLOSED, Hub

logger = logging.getLogger(__name__)

_passes: dict[Hub, asyncio.Task] = {}


def start(hub: Hub) -> None:
    """Run the pass for ``hub``'s streams, unless it runs already. It stops when the hub
    has no stream left; the next stream starts it again."""
    running = _passes.get(hub)
    if running is None or running.done():
        # A context of its own, not the request's that starts it: the request's ends
        # with it (asgiref's executor, the log's request id and user).
        _passes[hub] = asyncio.get_running_loop().create_task(
            _every_interval(hub), context=contextvars.Context()
        )


async def _every_interval(hub: Hub) -> None:
    while True:
        await asyncio.sleep(settings.EVENTS_STREAM_CHECK_SECONDS)
        if not hub.listeners():
            return
        try:
            await check_streams(hub)
        except Exception as error:  # noqa: BLE001 - the next pass tries again
            logger.warning("Live stream: checking the open streams failed (%r)", error)


async def check_streams(hub: Hub) -> None:
    listeners = hub.listeners()
    if not listeners:
        return
    viewers = {listener.viewer for listener in listeners}
    store_of_channel = {listener.channel: listener.viewer.store_id for listener in listeners}
    allowed, last_seqs = await log.in_thread(_ask, viewers, set(store_of_channel.values()))
    ended = 0
    for listener in listeners:
        if listener.viewer not in allowed:
            listener.deliver(CLOSED)
            ended += 1
    if ended:
        logger.info("Live stream: %d stream(s) ended, their access gone", ended)
    # Later, so that publishes on their way have arrived; not in the pass, whose next
    # one would come that much later.
    asyncio.get_running_loop().call_later(
        settings.EVENTS_STREAM_GAP_SECONDS, _catch_up, hub, store_of_channel, last_seqs
    )


def _catch_up(hub: Hub, store_of_channel: dict[str, int], last_seqs: dict[int, int]) -> None:
    for channel, store_id in store_of_channel.items():
        hub.catch_up(channel, last_seqs.get(store_id, 0))


def _ask(viewers, store_ids) -> tuple[set, dict[int, int]]:
    return log.viewers_with_access(viewers), log.last_seqs(store_ids)
