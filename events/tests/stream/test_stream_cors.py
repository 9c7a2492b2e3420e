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
    unlisted = preflight(events_server, stream_path(store), "http://evil.example")

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == DASHBOARD
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "last-event-id" in allowed.headers["access-control-allow-headers"]
    assert "access-control-allow-origin" not in unlisted.headers


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


def test_no_other_path_answers_cors(events_server):
    response = httpx.get(
        f"http://127.0.0.1:{events_server}/healthz", headers={"Origin": DASHBOARD}, timeout=10
    )

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
