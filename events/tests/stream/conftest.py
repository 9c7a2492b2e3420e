"""A real ``bin/run events`` on the test database and Redis, and a client of its streams."""

import asyncio
import json
import uuid

import httpx
import pytest
from rest_framework.authtoken.models import Token

from stores.models import Role
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory
from tests.processes import ProjectProcesses, project_env, redis_url, url_of_the_test_database

NEEDS_REDIS = pytest.mark.services("the live stream travels through Redis pub/sub")


@pytest.fixture
def channel_prefix(settings):
    """A CACHE_KEY_PREFIX of this test's own, shared with its events process: Redis
    channels are server-wide, and other test runs may use the same Redis."""
    settings.CACHE_KEY_PREFIX = f"events-stream-{uuid.uuid4().hex}"
    return settings.CACHE_KEY_PREFIX


@pytest.fixture
def events_application_name() -> str:
    """The ``application_name`` of the events process's database sessions, to count
    them in pg_stat_activity."""
    return f"events-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def events_env(transactional_db, channel_prefix, events_application_name):
    return project_env(
        DATABASE_URL=f"{url_of_the_test_database()}?application_name={events_application_name}",
        REDIS_URL=redis_url(),
        DEBUG="false",
        SECRET_KEY="events-stream-tests-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1",
        CACHE_KEY_PREFIX=channel_prefix,
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


def stream_path(store) -> str:
    return f"/api/v1/stores/{store.code}/events/stream/"


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
    ``id`` ``until_seq``; ``opened`` is set once the answer's headers came (the stream
    has subscribed by then). ``events``: a list to fill, to watch the stream's
    progress."""
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
