"""The live stream served by a real ``bin/run events``, on the real PostgreSQL and Redis:
who may open it, where it resumes, and that backlog and live events join without a gap
or a duplicate."""

import asyncio
import subprocess
import sys

import httpx
import pytest
from django.contrib.auth import SESSION_KEY
from django.db import connection
from django.test import Client

from stores.models import Role
from tests.factories import StoreFactory, member
from tests.processes import ROOT

from .conftest import NEEDS_REDIS, read_stream, stream_path
from .writer import WRITER_SCRIPT, commit_events

pytestmark = [NEEDS_REDIS, pytest.mark.postgresql("the events process reads the test database")]


def get(port: int, path: str, **headers) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10)


def collect(port: int, path: str, *, until_seq: int, headers: dict) -> list[dict]:
    async def main():
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            return await read_stream(client, path, headers=headers, until_seq=until_seq)

    return asyncio.run(main())


def test_without_credentials_401_and_for_a_store_not_seen_404(events_server, store, viewer_token):
    outsider = StoreFactory(code="hamburg-01")

    anonymous = get(events_server, stream_path(store))
    bad_token = get(events_server, stream_path(store), Authorization="Token nope")
    other_store = get(events_server, stream_path(outsider), Authorization=f"Token {viewer_token}")

    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "not_authenticated")
    assert anonymous.headers["www-authenticate"] == "Token"
    assert bad_token.status_code == 401
    assert other_store.json() == {"detail": "No such store.", "code": "not_found"}
    assert other_store.status_code == 404


def test_a_token_opens_the_stream_with_the_log_from_the_start(
    events_server, store, product, viewer_token
):
    events = commit_events(store, product, 3)

    received = collect(
        events_server,
        stream_path(store),
        until_seq=3,
        headers={"Authorization": f"Token {viewer_token}"},
    )

    assert [event["id"] for event in received] == [1, 2, 3]
    first = received[0]
    assert first["event"] == events[0].type
    assert first["data"]["seq"] == 1 and first["data"]["sku"] == product.sku
    assert set(first["data"]) == {
        "seq", "type", "sku", "on_hand", "reserved", "available", "reorder_point", "version", "at"
    }  # fmt: skip


def test_a_browser_session_opens_the_stream(events_server, events_env, settings, store, product):
    settings.SECRET_KEY = events_env["SECRET_KEY"]  # the session is signed as the site signs
    user = member("browser", store, Role.VIEWER)
    browser = Client()
    browser.force_login(user)
    cookie = browser.cookies["sessionid"].value
    commit_events(store, product, 1)

    received = collect(
        events_server, stream_path(store), until_seq=1, headers={"Cookie": f"sessionid={cookie}"}
    )

    assert browser.session[SESSION_KEY] == str(user.pk)
    assert [event["id"] for event in received] == [1]


def test_last_event_id_resumes_with_exactly_the_events_after_it(
    events_server, store, product, viewer_token
):
    commit_events(store, product, 5)

    resumed = collect(
        events_server,
        stream_path(store),
        until_seq=5,
        headers={"Authorization": f"Token {viewer_token}", "Last-Event-ID": "3"},
    )
    after = collect(
        events_server,
        f"{stream_path(store)}?after=4",
        until_seq=5,
        headers={"Authorization": f"Token {viewer_token}"},
    )

    assert [event["id"] for event in resumed] == [4, 5]
    assert [event["id"] for event in after] == [5]


def test_a_cursor_that_is_no_seq_is_refused(events_server, store, viewer_token):
    refused = get(
        events_server, f"{stream_path(store)}?after=-1", Authorization=f"Token {viewer_token}"
    )

    assert (refused.status_code, refused.json()["code"]) == (400, "invalid")


def test_events_lost_on_the_way_are_read_from_the_log(events_server, store, product, viewer_token):
    """A publish that never came (Redis failed): the next event heard shows the gap, and
    the stream reads the missing events from the log."""

    async def main():
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{events_server}", timeout=30
        ) as client:
            opened = asyncio.Event()
            reader = asyncio.create_task(
                read_stream(
                    client,
                    stream_path(store),
                    headers={"Authorization": f"Token {viewer_token}"},
                    until_seq=4,
                    opened=opened,
                )
            )
            await asyncio.wait_for(opened.wait(), 30)
            await asyncio.to_thread(write)
            return await asyncio.wait_for(reader, 30)

    def write():
        try:
            commit_events(store, product, 3, publish=False)
            commit_events(store, product, 1)
        finally:
            connection.close()

    received = asyncio.run(main())

    assert [event["id"] for event in received] == [1, 2, 3, 4]


def test_backlog_and_live_events_join_without_gap_or_duplicate(
    events_server, events_env, store, product, viewer_token
):
    """Streams open one after another while another process commits events: each gets
    every event once, in order, whether from the log or live."""
    commits, per_commit = 60, 2
    total = commits * per_commit
    script = WRITER_SCRIPT.format(
        store=store.pk, product=product.pk, commits=commits, per_commit=per_commit
    )
    writer = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=events_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    async def main():
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{events_server}", timeout=60
        ) as client:
            readers = []
            for _ in range(10):
                readers.append(
                    asyncio.create_task(
                        read_stream(
                            client,
                            stream_path(store),
                            headers={"Authorization": f"Token {viewer_token}"},
                            until_seq=total,
                        )
                    )
                )
                await asyncio.sleep(0.05)
            return await asyncio.wait_for(asyncio.gather(*readers), 60)

    try:
        streams = asyncio.run(main())
    finally:
        output, _ = writer.communicate(timeout=60)

    assert "written" in output, output
    for received in streams:
        assert [event["id"] for event in received] == list(range(1, total + 1))


def test_an_open_stream_holds_no_database_connection(
    events_server, events_application_name, store, product, viewer_token
):
    commit_events(store, product, 2)

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
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{events_server}",
            timeout=30,
            limits=httpx.Limits(max_connections=None),
        ) as client:
            progress = [[] for _ in range(50)]
            readers = [
                asyncio.create_task(
                    read_stream(
                        client,
                        stream_path(store),
                        headers={"Authorization": f"Token {viewer_token}"},
                        until_seq=3,
                        events=events,
                    )
                )
                for events in progress
            ]
            # Every stream has sent its backlog (seq 1 and 2) and waits.
            while not all(len(events) == 2 for events in progress):
                await asyncio.sleep(0.1)
            idle = await asyncio.to_thread(events_sessions)
            await asyncio.to_thread(lambda: (commit_events(store, product, 1), connection.close()))
            return idle, await asyncio.wait_for(asyncio.gather(*readers), 30)

    idle, received = asyncio.run(asyncio.wait_for(main(), 60))

    assert idle == 0
    assert all([event["id"] for event in stream] == [1, 2, 3] for stream in received)
