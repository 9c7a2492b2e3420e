"""One Redis pub/sub connection per events process, shared by every open stream.

A stream joins its store's channel and gets a ``Listener`` whose queue receives the
channel's messages. The first listener of a channel subscribes it and the last one to
leave unsubscribes it. ``join`` returns once Redis has confirmed the subscription, so
that everything published after it returns reaches the listener: the stream reads the
log only then.

Redis answers SUBSCRIBE and UNSUBSCRIBE of a channel in the order they were sent, so
each channel keeps the confirmations it waits for in that order (a listener may join
while the last one's UNSUBSCRIBE is still on its way).

Each message is parsed once, here, into a ``Heard`` (its ``seq`` and its SSE frame,
ready to send) that every listener of the channel gets: a message costs each open
stream a queue append, not a JSON parse.

When the connection fails every listener is closed: its stream ends, and the client
reconnects with ``Last-Event-ID`` and reads what it missed from the log.
"""

import asyncio
import collections
import json
import logging
from dataclasses import dataclass, field

import redis.asyncio as redis
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

# Put in a listener's queue: the listener missed messages (its queue was full: a slow
# client), or the hub lost Redis and the stream must end.
MISSED = object()
CLOSED = object()

# Messages a listener may have waiting before it is told it missed some.
QUEUE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Heard:
    """An event heard on a channel: its ``seq`` and its Server-Sent Events frame."""

    seq: int
    frame: bytes


def sse_frame(seq: int, kind: str, data: str | bytes) -> bytes:
    """An event as the stream sends it: ``id`` (the seq), ``event`` (its type) and
    ``data`` (the event's JSON, ``events.channels.event_data``)."""
    if isinstance(data, str):
        data = data.encode()
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, kind.encode(), data)


def heard(data: bytes) -> Heard:
    """A channel message as the listeners get it. Raises ValueError (or KeyError,
    TypeError) for a message that is no event."""
    event = json.loads(data)
    return Heard(event["seq"], sse_frame(event["seq"], event["type"], data))


class Listener:
    """One open stream on ``channel``; ``viewer`` says who opened it, for the periodic
    check (``events.stream.checks``).

    ``last_seq`` is the last event its stream sent (the stream sets it), ``heard_seq``
    the highest seq queued for it: the check compares them with the log, stream by
    stream, since what one stream of a store read from the log says nothing of what the
    others sent. An event heard and not yet sent is no event missed: its stream sends
    it, and a busy or starved process that is slow to would otherwise have every stream
    of a store read the log, each with a connection of its own, just as it catches up."""

    def __init__(self, channel: str, viewer=None):
        self.channel = channel
        self.viewer = viewer
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self.last_seq = 0
        self.heard_seq = 0
        self.closed = False

    def may_have_missed(self, last_seq: int) -> bool:
        """Whether the log's ``last_seq`` is past what the stream sent and heard."""
        return max(self.last_seq, self.heard_seq) < last_seq

    def deliver(self, item) -> None:
        """Queue ``item`` for the stream. Once CLOSED is queued nothing more is: a
        message that found the queue full would otherwise replace the CLOSED that took
        its last slot, and the stream whose access is gone would stay open."""
        if self.closed:
            return
        if item is CLOSED:
            self.closed = True
        elif isinstance(item, Heard) and item.seq > self.heard_seq:
            self.heard_seq = item.seq
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # What is queued is replaced by one marker: the stream reads the log instead.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(CLOSED if self.closed else MISSED)


@dataclass
class _Channel:
    listeners: set[Listener] = field(default_factory=set)
    # (command, future) for each SUBSCRIBE/UNSUBSCRIBE sent and not yet confirmed.
    pending: collections.deque = field(default_factory=collections.deque)
    # The future of the latest SUBSCRIBE while it is the latest command sent; None when
    # the latest command is an UNSUBSCRIBE (or none was sent).
    subscribed: asyncio.Future | None = None


class Hub:
    def __init__(self, url: str):
        self.url = url
        self.pubsub = None
        self.reader: asyncio.Task | None = None
        self.channels: dict[str, _Channel] = {}
        self._connecting = asyncio.Lock()

    async def join(self, channel: str, viewer=None) -> Listener:
        """A listener of ``channel``, once Redis confirmed its subscription. Raises the
        Redis error when Redis cannot be reached."""
        if self.pubsub is None:
            await self._connect()
        state = self.channels.setdefault(channel, _Channel())
        listener = Listener(channel, viewer)
        state.listeners.add(listener)
        try:
            if state.subscribed is None:
                state.subscribed = asyncio.get_running_loop().create_future()
                state.pending.append(("subscribe", state.subscribed))
                try:
                    await self.pubsub.subscribe(channel)
                except (redis.RedisError, OSError) as error:
                    self._fail(error)
                    raise
                if self.reader is None:
                    self.reader = asyncio.create_task(self._read(self.pubsub))
            await asyncio.shield(state.subscribed)
        except BaseException:
            await self.leave(listener)
            raise
        return listener

    async def _connect(self) -> None:
        """The one pub/sub connection, connected before any SUBSCRIBE is sent: redis-py
        connects a PubSub on its first command, and two first commands (streams of two
        stores opening at once) would each make a connection, the second replacing the
        first, whose subscription's confirmation then never came (its streams hung)."""
        async with self._connecting:
            if self.pubsub is not None:
                return
            client = redis.Redis.from_url(
                self.url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2
            )
            pubsub = client.pubsub()
            try:
                await pubsub.connect()
            except BaseException:
                await _close(pubsub)
                raise
            self.pubsub = pubsub

    async def leave(self, listener: Listener) -> None:
        state = self.channels.get(listener.channel)
        if state is None or listener not in state.listeners:
            return
        state.listeners.discard(listener)
        if state.listeners or state.subscribed is None or self.pubsub is None:
            return
        state.subscribed = None
        state.pending.append(("unsubscribe", asyncio.get_running_loop().create_future()))
        try:
            await self.pubsub.unsubscribe(listener.channel)
        except (redis.RedisError, OSError) as error:
            self._fail(error)

    def listeners(self) -> list[Listener]:
        """Every open stream's listener."""
        return [listener for state in self.channels.values() for listener in state.listeners]

    def catch_up(self, channel: str, last_seq: int) -> int:
        """The log of ``channel``'s store ends at ``last_seq``: each listener whose stream
        neither sent nor heard that far is told it missed events (it reads them from the
        log). Returns how many were."""
        state = self.channels.get(channel)
        if state is None:
            return 0
        behind = [listener for listener in state.listeners if listener.may_have_missed(last_seq)]
        for listener in behind:
            listener.deliver(MISSED)
        return len(behind)

    async def _read(self, pubsub) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is not None:
                    self._dispatch(message)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure ends every stream alike
            if pubsub is self.pubsub:
                logger.warning("Live stream: Redis pub/sub failed (%r); streams end", error)
                self._fail(error)

    def _dispatch(self, message: dict) -> None:
        kind = message["type"]
        channel = message["channel"].decode()
        state = self.channels.get(channel)
        if state is None:
            return
        if kind == "message":
            try:
                item = heard(message["data"])
            except (ValueError, KeyError, TypeError):
                logger.warning("Live stream: a message on %s is no event; skipped", channel)
                return
            for listener in list(state.listeners):
                listener.deliver(item)
        elif kind in ("subscribe", "unsubscribe") and state.pending:
            _, confirmed = state.pending.popleft()
            if not confirmed.done():
                confirmed.set_result(None)
            if not state.pending and not state.listeners and state.subscribed is None:
                del self.channels[channel]

    def _fail(self, error: BaseException) -> None:
        """Close every listener and forget the connection: the next ``join`` connects
        anew."""
        channels, pubsub, reader = self.channels, self.pubsub, self.reader
        self.channels, self.pubsub, self.reader = {}, None, None
        for state in channels.values():
            for _, confirmed in state.pending:
                if not confirmed.done():
                    confirmed.set_exception(ConnectionError(f"Redis pub/sub failed: {error!r}"))
                    confirmed.exception()  # retrieved: nobody else may await it
            for listener in state.listeners:
                listener.deliver(CLOSED)
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        if pubsub is not None:
            asyncio.get_running_loop().create_task(_close(pubsub))


async def _close(pubsub) -> None:
    try:
        await pubsub.aclose()
    except Exception:  # noqa: BLE001 - the connection is broken already
        pass


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def hub_for(url: str) -> Hub:
    """This event loop's hub (one per process in the events server)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.url != url:
        hub = _hubs[loop] = Hub(url)
    return hub
