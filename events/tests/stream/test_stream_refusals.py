"""The stream view where it cannot stream, in this process, in either mode: under
gunicorn (a WSGI request) it names the events process; without a Redis to listen on it
answers 503, never a stream that would stay silent. And the database threads that bound
what an events process asks at once."""

import asyncio
import threading
import time

import pytest
from django.test import AsyncClient, Client
from rest_framework.authtoken.models import Token

from events.stream import log
from stores.models import Role
from tests.factories import StoreFactory, member

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/api/v1/stores/berlin-01/events/stream/"


@pytest.fixture
def token():
    viewer = member("viewer", StoreFactory(code="berlin-01"), Role.VIEWER)
    return Token.objects.create(user=viewer).key


def test_gunicorn_answers_the_stream_path_503_naming_the_events_process(token):
    response = Client().get(PATH, headers={"Authorization": f"Token {token}"})

    assert response.status_code == 503
    assert response.json()["code"] == "served_elsewhere"
    assert "bin/run events" in response.json()["detail"]


def test_without_redis_the_events_process_answers_503(settings, token):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    response = asyncio.run(AsyncClient().get(PATH, headers={"Authorization": f"Token {token}"}))

    assert response.status_code == 503
    assert response.json() == {
        "detail": "The live stream needs Redis (REDIS_URL).",
        "code": "unavailable",
    }


def test_with_redis_unreachable_it_answers_503_with_retry_after(settings, token):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        }
    }

    response = asyncio.run(AsyncClient().get(PATH, headers={"Authorization": f"Token {token}"}))

    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert response["Retry-After"] == "3"


def test_an_events_process_asks_the_database_in_at_most_its_threads_at_once(settings):
    """Even when streams stop waiting (their clients left) while their queries run on."""
    settings.EVENTS_STREAM_DB_CONNECTIONS = 3
    lock = threading.Lock()
    running, most = 0, 0

    def query():
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    async def many():
        left = [asyncio.ensure_future(log.in_thread(query)) for _ in range(10)]
        await asyncio.sleep(0.01)
        for call in left:  # their clients went away mid-query
            call.cancel()
        await asyncio.gather(*(log.in_thread(query) for _ in range(20)))

    asyncio.run(many())

    assert most == 3
