"""What a stream asks the database, each in a worker thread that closes its connection
before it returns: a stream holds no database connection while it waits, and an events
process has at most EVENTS_STREAM_DB_CONNECTIONS open at once, however many streams
connect or fill a gap together."""

import asyncio
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from rest_framework.exceptions import AuthenticationFailed

from accounts.authentication import TokenAuthentication
from stores.access import role_in_store

from ..channels import event_data
from ..models import StockEvent

# Events read from the log per query, and so sent per batch while catching up.
PAGE_SIZE = 500

_slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


def _slot() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _slots:
        _slots[loop] = asyncio.Semaphore(settings.EVENTS_STREAM_DB_CONNECTIONS)
    return _slots[loop]


async def in_thread(function, *args):
    """``function(*args)`` in a worker thread holding one of the process's database
    slots; the thread's connection is closed before the slot is given back."""

    def run():
        try:
            return function(*args)
        finally:
            connections[DEFAULT_DB_ALIAS].close()

    async with _slot():
        return await sync_to_async(run)()


@dataclass(frozen=True)
class Refusal:
    status: int  # 401: no or bad credentials; 404: no such store for this user
    detail: str
    code: str


def authorize(request, code: str) -> int | Refusal:
    """The id of store ``code`` if the request's user may view it: by the API token
    (``Authorization: Token <key>``) or else the session cookie (a browser's
    EventSource sends no header of its own)."""
    try:
        authenticated = TokenAuthentication().authenticate(request)
    except AuthenticationFailed as error:
        return Refusal(401, str(error.detail), "authentication_failed")
    user = authenticated[0] if authenticated else request.user
    if not user.is_authenticated:
        return Refusal(401, "Authentication credentials were not provided.", "not_authenticated")
    store, _ = role_in_store(user, code)
    if store is None:
        return Refusal(404, "No such store.", "not_found")
    return store.pk


async def pages_since(store_id: int, after: int):
    """The store's events after ``after`` as pages of (seq, type, data), each read in its
    own slot; no empty page."""
    while True:
        page = await in_thread(events_after, store_id, after)
        if page:
            yield page
        if len(page) < PAGE_SIZE:
            return
        after = page[-1][0]


def events_after(store_id: int, after: int) -> list[tuple[int, str, str]]:
    """(seq, type, data) of the store's next ``PAGE_SIZE`` events after ``after``, from
    the primary (a replica may not have the events the stream just heard of)."""
    rows = (
        StockEvent.objects.using(DEFAULT_DB_ALIAS)
        .filter(store_id=store_id, seq__gt=after)
        .select_related("product")
        .only(*EVENT_FIELDS, "product__sku")
        .order_by("seq")[:PAGE_SIZE]
    )
    return [(event.seq, event.type, event_data(event, event.product.sku)) for event in rows]


EVENT_FIELDS = (
    "store",
    "seq",
    "type",
    "product",
    "on_hand",
    "reserved",
    "available",
    "reorder_point",
    "version",
    "at",
)
