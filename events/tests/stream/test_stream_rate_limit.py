"""Each user may open EVENTS_STREAM_RATE_PER_USER streams, whatever the store; past it
429 ``throttled`` with ``Retry-After``, as the API's rate limits answer."""

import httpx
import pytest
from rest_framework.authtoken.models import Token

from stores.models import Role
from tests.factories import StoreFactory, member

from .conftest import NEEDS_REDIS, get, stream_path, token_headers

pytestmark = [NEEDS_REDIS, pytest.mark.postgresql("the events process reads the test database")]


@pytest.fixture
def stream_rate_per_user() -> str:
    return "3/m"


def opens(port: int, path: str, token: str) -> int:
    """The status a stream answers with; the stream is closed once its headers came."""
    url = f"http://127.0.0.1:{port}{path}"
    with httpx.stream("GET", url, headers=token_headers(token), timeout=10) as response:
        return response.status_code


def test_a_user_past_the_limit_is_refused_and_another_user_is_not(
    events_server, store, viewer_token
):
    hamburg = StoreFactory(code="hamburg-01")
    Token.objects.get(key=viewer_token).user.memberships.create(store=hamburg, role=Role.VIEWER)
    other_token = Token.objects.create(user=member("other", store, Role.VIEWER)).key
    opened = [
        opens(events_server, path, viewer_token)
        for path in (stream_path(store), stream_path(hamburg), stream_path(store))
    ]

    refused = get(events_server, stream_path(hamburg), token_headers(viewer_token))
    other = opens(events_server, stream_path(store), other_token)

    assert opened == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert set(refused.json()) == {"detail", "code"}
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert other == 200
