"""``GET /api/v1/stores/{code}/events/stream/``: a store's events as Server-Sent Events.

Served by the ASGI process (``bin/run events``): a stream stays open for hours, which
would hold a gunicorn worker for as long; gunicorn answers the path 503, naming the
process to route it to (README, "Live stream").
"""

import asyncio

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import JsonResponse, StreamingHttpResponse
from redis.exceptions import RedisError

from .. import channels
from . import checks, log
from .hub import CLOSED, MISSED, Heard, hub_for, sse_frame
from .ordering import InOrder

# The reconnection delay the stream suggests to EventSource clients (milliseconds).
RETRY_MILLISECONDS = 3000
# What an idle stream sends every EVENTS_STREAM_HEARTBEAT_SECONDS (an SSE comment).
HEARTBEAT = b": heartbeat\n\n"


async def event_stream(request, code: str):
    if not isinstance(request, ASGIRequest):
        return _error(
            503,
            "The live stream is served by the events process (bin/run events): route "
            "/api/v1/stores/<code>/events/stream/ to it.",
            "served_elsewhere",
        )
    after = _cursor(request)
    if after is None:
        return _error(400, "Last-Event-ID and ?after= take an event's seq (0 or more).", "invalid")
    viewer = await log.in_thread(log.authorize, request, code)
    if isinstance(viewer, log.Refusal):
        response = _error(viewer.status, viewer.detail, viewer.code)
        if viewer.status == 401:
            response["WWW-Authenticate"] = "Token"
        if viewer.retry_after is not None:
            response["Retry-After"] = str(viewer.retry_after)
        return response
    if not channels.uses_redis():
        return _error(503, "The live stream needs Redis (REDIS_URL).", "unavailable")
    hub = hub_for(channels.redis_url())
    try:
        listener = await hub.join(channels.store_channel(viewer.store_id), viewer)
    except (RedisError, ConnectionError, OSError) as error:  # redis-py's are neither
        response = _error(503, f"The live stream cannot reach Redis ({error}).", "unavailable")
        response["Retry-After"] = str(RETRY_MILLISECONDS // 1000)
        return response
    checks.start(hub)
    response = StreamingHttpResponse(
        _frames(hub, listener, viewer.store_id, after), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: send each event as it comes
    return response


async def _frames(hub, listener, store_id: int, after: int):
    """The stream's bytes: the retry hint, the log after ``after``, then the events heard
    on the channel, each ``seq`` once and in order, with a comment when idle; it ends when
    its listener is closed (Redis lost, or access lost: ``checks``). A woken stream
    waits ``EVENTS_STREAM_FLUSH_SECONDS``, then everything queued goes out as one chunk:
    one send for the events of that moment, not one per event. Events heard past a gap
    wait up to ``EVENTS_STREAM_GAP_SECONDS`` for the ones before them (``ordering``);
    then, or when the stream missed events, it reads the log. Keeps
    ``listener.last_seq`` at the last seq it sent, which the periodic catch-up compares
    with the log. Leaves the channel however it ends (the client went away: Django
    cancels it)."""
    loop = asyncio.get_running_loop()
    order = InOrder(after, patience=settings.EVENTS_STREAM_GAP_SECONDS)
    listener.last_seq = after
    try:
        yield b"retry: %d\n\n" % RETRY_MILLISECONDS
        async for frames in _from_log(store_id, order, listener):  # the backlog
            yield frames
        while True:
            deadline = order.deadline()
            if deadline is None:
                wait = settings.EVENTS_STREAM_HEARTBEAT_SECONDS
            else:
                wait = max(0.0, deadline - loop.time())
            items = []
            try:
                async with asyncio.timeout(wait):
                    items.append(await listener.queue.get())
            except TimeoutError:
                if deadline is None:
                    yield HEARTBEAT
                    continue
            if items and items[0] is not CLOSED and settings.EVENTS_STREAM_FLUSH_SECONDS:
                await asyncio.sleep(settings.EVENTS_STREAM_FLUSH_SECONDS)  # the moment's events
            while not listener.queue.empty():
                items.append(listener.queue.get_nowait())
            for item in items:
                if isinstance(item, Heard):
                    order.add(item)
            if frames := order.take(loop.time()):
                listener.last_seq = order.last  # before the send, which a slow client holds
                yield b"".join(frames)
            if CLOSED in items:
                return
            if MISSED in items or order.overdue(loop.time()):
                # Events were not heard (a publish failed, the queue overflowed, the
                # periodic check found the log ahead): the log has them, committed in
                # seq order, and with them whatever waited past the gap.
                async for frames in _from_log(store_id, order, listener):
                    yield frames
                order.log_read()
                # What it heard past the log's end is dropped (``log_read``): no longer
                # heard, so that the periodic catch-up looks again.
                listener.heard_seq = order.last
    finally:
        await hub.leave(listener)


async def _from_log(store_id: int, order: InOrder, listener):
    """The frames of each page of the store's log after what the stream sent; moves
    ``order`` and ``listener.last_seq`` past each page as it goes."""
    async for page in log.pages_since(store_id, order.last):
        order.sent_up_to(page[-1][0])
        listener.last_seq = order.last
        yield b"".join(sse_frame(seq, kind, data) for seq, kind, data in page)


def _cursor(request) -> int | None:
    """The seq to send events after: the ``Last-Event-ID`` an EventSource sends when it
    reconnects, else ``?after=``, else 0 (everything the log holds)."""
    value = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _error(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)
