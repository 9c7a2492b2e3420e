"""A real ``bin/run events`` on the test database and Redis, stock changed through
``stock.services`` (in the test or in a writer process) so that the events streamed are
the ones the services write and publish, and clients of the streams."""

import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from events.publisher import publish_committed_events
from events.signals import stock_events_committed
from stock.services import stock_receive
from stores.models import Role
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory
from tests.processes import (
    ROOT,
    ProjectProcesses,
    project_env,
    redis_url,
    url_of_the_test_database,
)

NEEDS_REDIS = pytest.mark.services("the live stream travels through Redis pub/sub")


@pytest.fixture
def channel_prefix(settings):
    """A CACHE_KEY_PREFIX of this test's own, shared with its events process: Redis
    channels are server-wide, and other test runs may use the same Redis. The test's
    cache takes it too, so that what the test changes (a membership revoked) retires
    the lookups the events process reads."""
    prefix = f"events-stream-{uuid.uuid4().hex}"
    settings.CACHE_KEY_PREFIX = prefix
    settings.CACHES = {
        alias: {**options, "KEY_PREFIX": prefix} for alias, options in settings.CACHES.items()
    }
    return prefix


@pytest.fixture
def events_application_name() -> str:
    """The ``application_name`` of the events process's database sessions, to count
    them in pg_stat_activity."""
    return f"events-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def stream_check_seconds() -> str:
    """EVENTS_STREAM_CHECK_SECONDS of the events process: long, so that a test sees a
    stream fill a gap because a later event arrived, not because the periodic check
    ran; the tests of that check override it."""
    return "600"


@pytest.fixture
def stream_rate_per_user() -> str:
    """EVENTS_STREAM_RATE_PER_USER of the events process: past what any test opens (500
    streams of one user), but in the test of the limit."""
    return "10000/m"


@pytest.fixture
def stream_gap_seconds() -> str:
    """EVENTS_STREAM_GAP_SECONDS of the events process: its default, but in the test
    that a late publish is waited for, which needs room to tell waiting from reading."""
    return "0.5"


@pytest.fixture
def stream_heartbeat_seconds() -> str:
    """EVENTS_STREAM_HEARTBEAT_SECONDS of the events process: its default, but in the
    test of the heartbeat."""
    return "15"


@pytest.fixture
def stream_allowed_origins() -> str:
    """EVENTS_STREAM_ALLOWED_ORIGINS of the events process: none (same origin only), but
    in the tests of CORS."""
    return ""


@pytest.fixture
def events_env(
    transactional_db,
    channel_prefix,
    events_application_name,
    stream_check_seconds,
    stream_rate_per_user,
    stream_gap_seconds,
    stream_heartbeat_seconds,
    stream_allowed_origins,
):
    return project_env(
        DATABASE_URL=f"{url_of_the_test_database()}?application_name={events_application_name}",
        REDIS_URL=redis_url(),
        DEBUG="false",
        SECRET_KEY="events-stream-tests-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1",
        CACHE_KEY_PREFIX=channel_prefix,
        EVENTS_STREAM_CHECK_SECONDS=stream_check_seconds,
        EVENTS_STREAM_RATE_PER_USER=stream_rate_per_user,
        EVENTS_STREAM_GAP_SECONDS=stream_gap_seconds,
        EVENTS_STREAM_HEARTBEAT_SECONDS=stream_heartbeat_seconds,
        EVENTS_STREAM_ALLOWED_ORIGINS=stream_allowed_origins,
    )


@pytest.fixture
def events_server(events_env, tmp_path):
    """``bin/run events`` on a free port; yields the port. Stopped before the test
    database is flushed."""
    processes = ProjectProcesses(events_env, tmp_path)
    try:
        yield processes.start_serving("events", "events")
    finally:
        processes.stop_all()


@pytest.fixture
def store(transactional_db):
    return StoreFactory(code="berlin-01")


@pytest.fixture
def product(transactional_db):
    return ProductFactory(sku="TEE")


@pytest.fixture
def viewer_token(store) -> str:
    user = UserFactory(username="viewer")
    MembershipFactory(user=user, store=store, role=Role.VIEWER)
    return Token.objects.create(user=user).key


def token_headers(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}", **headers}


def stream_path(store) -> str:
    return f"/api/v1/stores/{store.code}/events/stream/"


# --- Stock changes -----------------------------------------------------------------------


def receive(store, product, count: int = 1) -> None:
    """``count`` receipts of one unit, each its own commit and so its own event,
    published after the commit. In a thread of the test, call ``connection.close()``
    when done (``in_thread``)."""
    for _ in range(count):
        stock_receive(store=store, product=product, quantity=1, reference="stream-test")


async def in_thread(function, *args):
    """``function(*args)`` in a worker thread, its database connection closed after."""

    def run():
        try:
            return function(*args)
        finally:
            connection.close()

    return await asyncio.to_thread(run)


@contextlib.contextmanager
def publishes_held():
    """Commits made meanwhile publish nothing yet: yields a function that publishes
    their events, later, as a writer that was slow to publish after its commit does."""
    held = []

    def hold(sender, events, **kwargs):
        held.extend(events)

    stock_events_committed.disconnect(dispatch_uid="events.publisher")
    stock_events_committed.connect(hold, dispatch_uid="events.tests.held")
    try:
        yield lambda: publish_committed_events(sender=None, events=held)
    finally:
        stock_events_committed.disconnect(dispatch_uid="events.tests.held")
        stock_events_committed.connect(publish_committed_events, dispatch_uid="events.publisher")


@contextlib.contextmanager
def publishes_lost():
    """Commits made meanwhile publish nothing, as when Redis failed at that moment:
    their events are in the log only."""
    with publishes_held():
        yield


# What a writer process runs (``start_writer``): each commit receives one unit of each
# product in one transaction, so it writes and publishes one event per product.
WRITER_SCRIPT = """
from django.db import transaction
from catalog.models import Product
from stock.services import stock_receive
from stores.models import Store
store = Store.objects.get(pk={store})
products = list(Product.objects.filter(pk__in={products}).order_by("pk"))
for _ in range({commits}):
    with transaction.atomic():
        for product in products:
            stock_receive(store=store, product=product, quantity=1, reference="writer")
print("written")
"""


def start_writer(env: dict, store, products, commits: int) -> subprocess.Popen:
    """Another process changing stock through ``stock.services``: ``commits`` commits
    of ``len(products)`` events each. ``communicate()`` says "written" when it is done."""
    script = WRITER_SCRIPT.format(
        store=store.pk, products=[product.pk for product in products], commits=commits
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(writer: subprocess.Popen, timeout: float = 120) -> str:
    output, _ = writer.communicate(timeout=timeout)
    return output


# --- Clients -----------------------------------------------------------------------------


def get(port: int, path: str, headers: dict | None = None) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers or {}, timeout=10)


def stream_client(port: int, timeout: float = 60) -> httpx.AsyncClient:
    """A client for many streams at once: no cap on its connections, none kept."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=timeout, limits=limits)


async def read_stream(
    client: httpx.AsyncClient,
    path: str,
    *,
    headers: dict,
    until_seq: int,
    opened: asyncio.Event | None = None,
    events: list | None = None,
) -> list[dict]:
    """The events (``{"id", "event", "data"}``) one stream sends until the one with
    ``id`` ``until_seq``, or until the stream ends; ``opened`` is set once the answer's
    headers came (the stream has subscribed by then). ``events``: a list to fill, to
    watch the stream's progress."""
    events, fields = ([] if events is None else events), {}
    async with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        if opened is not None:
            opened.set()
        async for line in response.aiter_lines():
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            if "data" in fields:
                data = json.loads(fields["data"])
                events.append({"id": int(fields["id"]), "event": fields["event"], "data": data})
                if events[-1]["id"] >= until_seq:
                    return events
            fields = {}
    return events


def collect(port: int, path: str, *, until_seq: int, headers: dict) -> list[dict]:
    """The events of one stream until ``until_seq``, read to the end."""

    async def main():
        async with stream_client(port, timeout=30) as client:
            return await read_stream(client, path, headers=headers, until_seq=until_seq)

    return asyncio.run(main())


def readers(
    client: httpx.AsyncClient, store, token: str, count: int, *, until_seq: int, **options
) -> list[asyncio.Task]:
    """``count`` streams of ``store`` opened with ``token``, each read by a task until
    ``until_seq``. ``options``: ``opened`` or ``events``, a list of ``count`` of them."""
    return [
        asyncio.create_task(
            read_stream(
                client,
                stream_path(store),
                headers=token_headers(token),
                until_seq=until_seq,
                **{name: values[index] for name, values in options.items()},
            )
        )
        for index in range(count)
    ]


def follow(port: int, store, headers: dict, change, *, until_seq: int, events=None):
    """Open a stream with ``headers``, run ``change`` (in a thread) once it is open, and
    read the stream until ``until_seq`` or its end: (events, seconds from the change to
    then). ``events``: a list to fill, to watch the stream's progress from ``change``."""

    async def main():
        async with stream_client(port, timeout=30) as client:
            opened = asyncio.Event()
            reader = asyncio.create_task(
                read_stream(
                    client,
                    stream_path(store),
                    headers=headers,
                    until_seq=until_seq,
                    opened=opened,
                    events=events,
                )
            )
            await asyncio.wait_for(opened.wait(), 30)
            await in_thread(change)
            changed = time.monotonic()
            received = await asyncio.wait_for(reader, 30)
            return received, time.monotonic() - changed

    return asyncio.run(main())


def seqs(events: list[dict]) -> list[int]:
    return [event["id"] for event in events]
