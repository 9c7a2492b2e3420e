"""The events process's periodic check of its open streams (``events.stream.checks``),
every EVENTS_STREAM_CHECK_SECONDS: events no publish announced reach the streams without
waiting for a next event, and a stream whose user lost access (or whose browser logged
out) ends, its reconnection refused."""

import asyncio
import time

import pytest
from django.contrib.auth.models import Permission
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from rest_framework.authtoken.models import Token

from stock.services import stock_seed_levels
from stores.models import Membership, Role
from tests.factories import ProductFactory, StaffFactory, member

from .conftest import (
    NEEDS_REDIS,
    collect,
    follow,
    get,
    in_thread,
    publishes_lost,
    read_stream,
    receive,
    seqs,
    stream_client,
    stream_path,
    token_headers,
)

pytestmark = [NEEDS_REDIS, pytest.mark.postgresql("the events process reads the test database")]

CHECK_SECONDS = 0.5
# How long a pass waits for publishes on their way before it wakes streams behind.
GAP_SECONDS = 0.2
# What a stream may take past the interval to end or catch up: a pass's three queries
# and the client's read, on a busy machine.
SLACK_SECONDS = 2.5
WITHIN_SECONDS = CHECK_SECONDS + GAP_SECONDS + SLACK_SECONDS


@pytest.fixture
def stream_check_seconds() -> str:
    return str(CHECK_SECONDS)


@pytest.fixture
def stream_gap_seconds() -> str:
    return str(GAP_SECONDS)


def test_a_seeding_reaches_an_open_stream_without_a_next_event(events_server, store, viewer_token):
    products = [ProductFactory(sku=f"SEED-{number}") for number in range(3)]

    received, took = follow(
        events_server,
        store,
        token_headers(viewer_token),
        lambda: stock_seed_levels(stores=[store], products=products),
        until_seq=3,
    )

    assert seqs(received) == [1, 2, 3]
    assert {event["data"]["sku"] for event in received} == {"SEED-0", "SEED-1", "SEED-2"}
    assert took < WITHIN_SECONDS


def test_the_last_events_of_a_lost_publish_arrive_without_a_next_event(
    events_server, store, product, viewer_token
):
    def write():
        receive(store, product, 1)
        with publishes_lost():
            receive(store, product, 2)

    received, took = follow(events_server, store, token_headers(viewer_token), write, until_seq=3)

    assert seqs(received) == [1, 2, 3]
    assert took < WITHIN_SECONDS


def test_a_seeding_reaches_an_open_stream_after_another_stream_of_its_store_read_it(
    events_server, store, viewer_token
):
    """What one stream read from the log says nothing of what another stream sent: the
    stream open before the seeding still gets its events from the next pass."""
    products = [ProductFactory(sku=f"SEED-{number}") for number in range(3)]
    headers = token_headers(viewer_token)

    def seed_then_open_another_stream():
        stock_seed_levels(stores=[store], products=products)  # publishes nothing
        other_stream = collect(events_server, stream_path(store), until_seq=3, headers=headers)
        assert seqs(other_stream) == [1, 2, 3]

    async def main():
        async with stream_client(events_server, timeout=30) as client:
            opened = asyncio.Event()
            reader = asyncio.create_task(
                read_stream(client, stream_path(store), headers=headers, until_seq=3, opened=opened)
            )
            await asyncio.wait_for(opened.wait(), 30)
            await asyncio.sleep(CHECK_SECONDS * 1.5)  # a pass ran while nothing was missed
            await in_thread(seed_then_open_another_stream)
            opened_first = time.monotonic()
            received = await asyncio.wait_for(reader, 30)
            return received, time.monotonic() - opened_first

    received, took = asyncio.run(main())

    assert seqs(received) == [1, 2, 3]
    assert took < WITHIN_SECONDS


def revoke_membership(user, store, token):
    Membership.objects.filter(user=user, store=store).delete()


def delete_token(user, store, token):
    Token.objects.filter(key=token).delete()


def deactivate(user, store, token):
    user.is_active = False
    user.save(update_fields=["is_active"])


@pytest.mark.parametrize(
    ("revoke", "reconnection"),
    [(revoke_membership, 404), (delete_token, 401), (deactivate, 401)],
)
def test_a_stream_whose_access_is_gone_ends_and_may_not_reconnect(
    events_server, store, product, viewer_token, revoke, reconnection
):
    receive(store, product, 1)
    user = Token.objects.get(key=viewer_token).user

    received, took = follow(
        events_server,
        store,
        token_headers(viewer_token),
        lambda: revoke(user, store, viewer_token),
        until_seq=10**9,  # read until the stream ends
    )

    assert seqs(received) == [1]
    assert took < WITHIN_SECONDS
    assert get(events_server, stream_path(store), token_headers(viewer_token)).status_code == (
        reconnection
    )


def session_headers(settings, events_env, user) -> dict[str, str]:
    """The cookie of a browser logged in as ``user``, whose session the events process
    reads (signed with its SECRET_KEY)."""
    settings.SECRET_KEY = events_env["SECRET_KEY"]
    browser = Client()
    browser.force_login(user)
    cookie = settings.SESSION_COOKIE_NAME
    return {"Cookie": f"{cookie}={browser.cookies[cookie].value}"}


def log_out(headers: dict[str, str]) -> None:
    """What the site's logout does to the session: its row is deleted."""
    session_key = headers["Cookie"].partition("=")[2]
    SessionStore(session_key=session_key).flush()


def test_a_browser_stream_ends_when_its_session_logs_out(
    events_server, events_env, settings, store, product
):
    receive(store, product, 1)
    headers = session_headers(settings, events_env, member("browser", store, Role.VIEWER))

    received, took = follow(
        events_server, store, headers, lambda: log_out(headers), until_seq=10**9
    )

    assert seqs(received) == [1]
    assert took < WITHIN_SECONDS
    assert get(events_server, stream_path(store), headers).status_code == 401


def test_a_browser_stream_ends_when_its_user_changes_password(
    events_server, events_env, settings, store, product
):
    """Django retires a user's other sessions when they next make a request after a
    password change; an open stream makes none, so the check asks it in their place."""
    user = member("browser", store, Role.VIEWER)
    receive(store, product, 1)
    headers = session_headers(settings, events_env, user)

    def change_password():
        user.set_password("a-new-password-1")
        user.save(update_fields=["password"])

    received, took = follow(events_server, store, headers, change_password, until_seq=10**9)

    assert seqs(received) == [1]
    assert took < WITHIN_SECONDS
    assert get(events_server, stream_path(store), headers).status_code == 401


def test_streams_that_keep_their_access_stay_open(
    events_server, events_env, settings, store, product, viewer_token
):
    """A member by token, a member by a browser's session, and staff whose permission
    shows every store: several checks pass, and every stream still gets the next
    event."""
    staff = StaffFactory(username="staff", permissions=[])
    staff.user_permissions.add(Permission.objects.get(codename="view_stocklevel"))
    staff_token = Token.objects.create(user=staff).key
    browser = session_headers(settings, events_env, member("browser", store, Role.VIEWER))
    streams = [token_headers(viewer_token), browser, token_headers(staff_token)]

    async def main():
        async with stream_client(events_server, timeout=30) as client:
            opened = [asyncio.Event() for _ in streams]
            tasks = [
                asyncio.create_task(
                    read_stream(
                        client, stream_path(store), headers=headers, until_seq=1, opened=event
                    )
                )
                for headers, event in zip(streams, opened, strict=True)
            ]
            await asyncio.wait_for(asyncio.gather(*(event.wait() for event in opened)), 30)
            await asyncio.sleep(CHECK_SECONDS * 4)
            await in_thread(receive, store, product, 1)
            return await asyncio.wait_for(asyncio.gather(*tasks), 30)

    member_stream, browser_stream, staff_stream = asyncio.run(main())

    assert seqs(member_stream) == [1]
    assert seqs(browser_stream) == [1]
    assert seqs(staff_stream) == [1]
