"""A dashboard of another origin opens the stream with the browser's cookies: the events
process answers CORS with credentials for the origins EVENTS_STREAM_ALLOWED_ORIGINS
names, on the stream's path only, including the preflight of a reconnection (its
``Last-Event-ID`` is no CORS-safelisted header). The browser test watches a dashboard
do it (``tests/browser/test_store_dashboard_in_chromium.py``)."""

import asyncio

import httpx
import pytest

from .conftest import NEEDS_REDIS, stream_client, stream_path, token_headers

pytestmark = [NEEDS_REDIS, pytest.mark.postgresql("the events process reads the test database")]

DASHBOARD = "http://dashboard.example:8000"


@pytest.fixture
def stream_allowed_origins() -> str:
    return f"{DASHBOARD},http://other.example"


def preflight(port: int, path: str, origin: str) -> httpx.Response:
    return httpx.options(
        f"http://127.0.0.1:{port}{path}",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "last-event-id",
        },
        timeout=10,
    )


def test_a_reconnections_preflight_is_allowed_for_a_listed_origin(events_server, store):
    allowed = preflight(events_server, stream_path(store), DASHBOARD)

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == DASHBOARD
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "last-event-id" in allowed.headers["access-control-allow-headers"]


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "https://dashboard.example:8000",  # another scheme
        "http://dashboard.example:8001",  # another port
        "http://dashboard.example",  # the default port
        "http://dashboard.example.evil.example:8000",  # a look-alike host
    ],
)
def test_an_origin_not_listed_exactly_gets_no_cors(events_server, store, origin):
    assert (
        "access-control-allow-origin"
        not in preflight(events_server, stream_path(store), origin).headers
    )


def test_the_stream_answers_a_listed_origin_with_credentials_and_no_other(
    events_server, store, product, viewer_token
):
    async def opened(origin: str) -> httpx.Headers:
        async with stream_client(events_server, timeout=10) as client:
            headers = token_headers(viewer_token, Origin=origin)
            async with client.stream("GET", stream_path(store), headers=headers) as response:
                assert response.status_code == 200
                return response.headers

    allowed, unlisted = asyncio.run(opened(DASHBOARD)), asyncio.run(opened("http://evil.example"))

    assert allowed["access-control-allow-origin"] == DASHBOARD
    assert allowed["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in unlisted


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/stores/berlin-01/events/",  # the events API, the stream's neighbour
        "/api/v1/stores/berlin-01/stock/",
        "/api/v1/auth/token/",
        "/admin/",
        "/healthz",
    ],
)
def test_no_other_path_answers_cors(events_server, store, path):
    asked = preflight(events_server, path, DASHBOARD)
    read = httpx.get(
        f"http://127.0.0.1:{events_server}{path}", headers={"Origin": DASHBOARD}, timeout=10
    )

    assert "access-control-allow-origin" not in asked.headers
    assert "access-control-allow-origin" not in read.headers
