"""``GET /api/v1/stores/{code}/events/stream/``: a store's events as Server-Sent Events.

Served by the ASGI process (``bin/run events``): a stream stays open for hours, which
would hold a gunicorn worker for as long; gunicorn answers the path 503, naming the
process to route it to (README, "Live stream").
"""

import asyncio
import json

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import JsonResponse, StreamingHttpResponse

from .. import channels
from . import log
from .hub import CLOSED, MISSED, hub_for

# The reconnection delay the stream suggests to EventSource clients (milliseconds).
RETRY_MILLISECONDS = 3000


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
    authorized = await log.in_thread(log.authorize, request, code)
    if isinstance(authorized, log.Refusal):
        response = _error(authorized.status, authorized.detail, authorized.code)
        if authorized.status == 401:
            response["WWW-Authenticate"] = "Token"
        return response
    if not channels.uses_redis():
        return _error(503, "The live stream needs Redis (REDIS_URL).", "unavailable")
    hub = hub_for(channels.redis_url())
    try:
        listener = await hub.join(channels.store_channel(authorized))
    except (ConnectionError, OSError) as error:
        response = _error(503, f"The live stream cannot reach Redis ({error}).", "unavailable")
        response["Retry-After"] = str(RETRY_MILLISECONDS // 1000)
        return response
    response = StreamingHttpResponse(
        _frames(hub, listener, authorized, after), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: send each event as it comes
    return response


async def _frames(hub, listener, store_id: int, after: int):
    """The stream's text: the retry hint, the log after ``after``, then the events heard
    on the channel, each ``seq`` once and in order, with a comment when idle. Leaves the
    channel however it ends (the client went away: Django cancels it)."""
    last = after
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        async for seq, kind, data in log.events_since(store_id, last):  # the backlog
            yield _frame(seq, kind, data)
            last = seq
        while True:
            try:
                item = await asyncio.wait_for(
                    listener.queue.get(), settings.EVENTS_STREAM_HEARTBEAT_SECONDS
                )
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            if item is CLOSED:
                return
            if item is not MISSED:
                event = json.loads(item)
                if event["seq"] <= last:
                    continue  # sent already, from the log
                if event["seq"] == last + 1:
                    yield _frame(event["seq"], event["type"], item.decode())
                    last = event["seq"]
                    continue
            # Events were not heard (a publish failed, a slower commit's publish comes
            # later, the queue overflowed): the log has them, committed in seq order.
            async for seq, kind, data in log.events_since(store_id, last):
                yield _frame(seq, kind, data)
                last = seq
    finally:
        await hub.leave(listener)


def _frame(seq: int, kind: str, data: str) -> str:
    return f"id: {seq}\nevent: {kind}\ndata: {data}\n\n"


def _cursor(request) -> int | None:
    """The seq to send events after: the ``Last-Event-ID`` an EventSource sends when it
    reconnects, else ``?after=``, else 0 (everything the log holds)."""
    value = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _error(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)
