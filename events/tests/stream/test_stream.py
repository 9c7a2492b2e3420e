"""The live stream served by a real ``bin/run events``, on the real PostgreSQL and Redis,
of stock changed through ``stock.services``: who may open it, where it resumes, and that
backlog and live events join without a gap or a duplicate."""

import asyncio
import json
import subprocess
import sys
import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.db import connection
from django.test import Client
from django_redis import get_redis_connection

from events.channels import store_channel
from events.models import EventType
from stores.models import Role
from tests.factories import ProductFactory, StoreFactory, member
from tests.processes import ROOT, wait_until

from .conftest import (
    NEEDS_REDIS,
    collect,
    finish,
    follow,
    get,
    in_thread,
    publishes_held,
    publishes_lost,
    readers,
    receive,
    seqs,
    start_writer,
    stream_client,
    stream_path,
    token_headers,
)

pytestmark = [NEEDS_REDIS, pytest.mark.postgresql("the events process reads the test database")]


def test_without_credentials_401_and_for_a_store_not_seen_404(events_server, store, viewer_token):
    outsider = StoreFactory(code="hamburg-01")

    anonymous = get(events_server, stream_path(store))
    bad_token = get(events_server, stream_path(store), {"Authorization": "Token nope"})
    other_store = get(events_server, stream_path(outsider), token_headers(viewer_token))

    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "not_authenticated")
    assert anonymous.headers["www-authenticate"] == "Token"
    assert bad_token.status_code == 401
    assert other_store.json() == {"detail": "No such store.", "code": "not_found"}
    assert other_store.status_code == 404


def test_a_token_opens_the_stream_with_the_log_from_the_start(
    events_server, store, product, viewer_token
):
    receive(store, product, 3)

    received = collect(
        events_server, stream_path(store), until_seq=3, headers=token_headers(viewer_token)
    )

    assert seqs(received) == [1, 2, 3]
    first = received[0]
    assert first["event"] == EventType.BACK_IN_STOCK  # 0 -> 1 available
    assert first["data"] == {
        "seq": 1,
        "type": EventType.BACK_IN_STOCK,
        "sku": product.sku,
        "on_hand": 1,
        "reserved": 0,
        "available": 1,
        "reorder_point": 0,
        "version": 1,
        "at": first["data"]["at"],
    }
    assert [event["data"]["on_hand"] for event in received] == [1, 2, 3]


def test_a_browser_session_opens_the_stream(events_server, events_env, settings, store, product):
    settings.SECRET_KEY = events_env["SECRET_KEY"]  # the session is signed as the site signs
    user = member("browser", store, Role.VIEWER)
    browser = Client()
    browser.force_login(user)
    cookie = browser.cookies["sessionid"].value
    receive(store, product, 1)

    received = collect(
        events_server, stream_path(store), until_seq=1, headers={"Cookie": f"sessionid={cookie}"}
    )

    assert browser.session[SESSION_KEY] == str(user.pk)
    assert seqs(received) == [1]


def test_last_event_id_resumes_with_exactly_the_events_after_it(
    events_server, store, product, viewer_token
):
    receive(store, product, 5)

    resumed = collect(
        events_server,
        stream_path(store),
        until_seq=5,
        headers=token_headers(viewer_token, **{"Last-Event-ID": "3"}),
    )
    after = collect(
        events_server,
        f"{stream_path(store)}?after=4",
        until_seq=5,
        headers=token_headers(viewer_token),
    )

    assert seqs(resumed) == [4, 5]
    assert seqs(after) == [5]


def test_a_cursor_that_is_no_seq_is_refused(events_server, store, viewer_token):
    refused = get(events_server, f"{stream_path(store)}?after=-1", token_headers(viewer_token))

    assert (refused.status_code, refused.json()["code"]) == (400, "invalid")


def test_events_lost_on_the_way_are_read_from_the_log_when_the_next_one_is_heard(
    events_server, store, product, viewer_token
):
    """Publishes that never came (Redis failed): the next event heard shows the gap, and
    the stream reads the missing events from the log (the periodic check is far off)."""

    def write():
        with publishes_lost():
            receive(store, product, 3)
        receive(store, product, 1)

    received, _ = follow(events_server, store, token_headers(viewer_token), write, until_seq=4)

    assert seqs(received) == [1, 2, 3, 4]
    assert [event["data"]["on_hand"] for event in received] == [1, 2, 3, 4]


@pytest.mark.parametrize("stream_gap_seconds", ["20"])
def test_an_event_published_late_is_waited_for_not_read_from_the_log(
    events_server, store, product, viewer_token
):
    """Two commits publish in the opposite order of their commits (the first writer was
    slower to publish): the stream sends nothing while the first event is still on its
    way, rather than read the log at the jump, and both once it comes, in order and well
    before EVENTS_STREAM_GAP_SECONDS would have read them from the log."""
    heard, sent_before = [], []

    def write_first_publish_second_then_first():
        with publishes_held() as publish_first:
            receive(store, product, 1)
        receive(store, product, 1)
        time.sleep(1.5)
        sent_before.extend(seqs(heard))
        publish_first()

    received, took = follow(
        events_server,
        store,
        token_headers(viewer_token),
        write_first_publish_second_then_first,
        until_seq=2,
        events=heard,
    )

    assert sent_before == []
    assert took < 5
    assert seqs(received) == [1, 2]
    assert [event["data"]["on_hand"] for event in received] == [1, 2]


def test_an_event_heard_that_the_log_does_not_hold_is_never_sent(
    events_server, store, product, viewer_token
):
    """A message on the store's channel for a seq its log does not hold (a standby that
    lost commits it had published, another deployment on the same Redis): the stream
    reads the log when the gap does not fill, drops what waited, and the real event of
    that seq goes out when it comes, not the one heard first."""

    def heard_then_written():
        get_redis_connection("default").publish(
            store_channel(store.pk),
            json.dumps({"seq": 3, "type": "stock.changed", "sku": "NOT-IN-THE-LOG"}),
        )
        time.sleep(1.5)  # past EVENTS_STREAM_GAP_SECONDS: the stream read the log
        receive(store, product, 2)
        time.sleep(1)  # what had waited would go out now, as seq 3
        receive(store, product, 1)

    received, _ = follow(
        events_server, store, token_headers(viewer_token), heard_then_written, until_seq=3
    )

    assert seqs(received) == [1, 2, 3]
    assert [event["data"]["sku"] for event in received] == ["TEE", "TEE", "TEE"]


def test_backlog_and_live_events_join_without_gap_or_duplicate(
    events_server, events_env, store, product, viewer_token
):
    """Streams open one after another while another process changes stock: each gets
    every event once, in order, whether from the log or live."""
    products = [product, ProductFactory(sku="MUG")]
    commits = 60
    total = commits * len(products)
    writer = start_writer(events_env, store, products, commits)

    async def main():
        async with stream_client(events_server) as client:
            tasks = []
            for _ in range(10):
                tasks += readers(client, store, viewer_token, 1, until_seq=total)
                await asyncio.sleep(0.05)
            return await asyncio.wait_for(asyncio.gather(*tasks), 60)

    try:
        streams = asyncio.run(main())
    finally:
        output = finish(writer)

    assert "written" in output, output
    for received in streams:
        assert seqs(received) == list(range(1, total + 1))


@pytest.mark.parametrize("stream_heartbeat_seconds", ["0.3"])
def test_an_idle_stream_sends_a_heartbeat_comment(events_server, store, product, viewer_token):
    """So that proxies keep it open: a comment line every EVENTS_STREAM_HEARTBEAT_SECONDS
    while nothing happens, after the backlog, which clients ignore."""
    receive(store, product, 1)

    async def lines_until_two_heartbeats() -> list[str]:
        lines = []
        async with stream_client(events_server, timeout=10) as client:
            headers = token_headers(viewer_token)
            async with client.stream("GET", stream_path(store), headers=headers) as response:
                async for line in response.aiter_lines():
                    lines.append(line)
                    if lines.count(": heartbeat") == 2:
                        return lines
        return lines

    lines = asyncio.run(asyncio.wait_for(lines_until_two_heartbeats(), 20))

    assert lines.count(": heartbeat") == 2
    assert lines.index("id: 1") < lines.index(": heartbeat")


# Connects as the events process does (its settings, its DATABASE_URL) and holds the
# connection until its stdin closes.
HOLD_A_CONNECTION = """
import sys
from django.db import connection
connection.ensure_connection()
print("connected", flush=True)
sys.stdin.read()
"""


def test_an_open_stream_holds_no_database_connection(
    events_server, events_env, events_application_name, store, product, viewer_token
):
    receive(store, product, 2)

    def events_sessions() -> int:
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    [events_application_name],
                )
                return cursor.fetchone()[0]
        finally:
            connection.close()

    async def main():
        async with stream_client(events_server, timeout=30) as client:
            progress = [[] for _ in range(50)]
            tasks = readers(client, store, viewer_token, 50, until_seq=3, events=progress)
            # Every stream has sent its backlog (seq 1 and 2) and waits.
            while not all(len(events) == 2 for events in progress):
                await asyncio.sleep(0.1)
            # PostgreSQL lets go of a session a moment after its client closed it.
            idle = await asyncio.to_thread(wait_until, lambda: events_sessions() == 0, timeout=5)
            await in_thread(receive, store, product, 1)
            return idle, await asyncio.wait_for(asyncio.gather(*tasks), 30)

    idle, received = asyncio.run(asyncio.wait_for(main(), 60))
    # The count sees a session of the events process's settings while it is open.
    holder = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", HOLD_A_CONNECTION],
        cwd=ROOT,
        env=events_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "connected\n"
        held = events_sessions()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)

    assert idle and held == 1
    assert all(seqs(stream) == [1, 2, 3] for stream in received)
