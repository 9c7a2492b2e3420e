"""Fixtures shared by the cross-app tests in this folder."""

import pytest
from django.test import override_settings

from tests.processes import free_port


@pytest.fixture
def dead_cache():
    """The cache is a Redis at a port where none listens; restored afterwards. Yields
    the port."""
    port = free_port()
    dead = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    with override_settings(CACHES=dead):
        yield port


class RedisRoundTrips:
    """Round trips this thread made to Redis: each is one send of one command, or of a
    whole pipeline, on a real connection."""

    def __init__(self):
        self.sent: list[bytes] = []

    def __len__(self):
        return len(self.sent)

    def commands(self) -> list[str]:
        """The first command name of each round trip, for assertion messages."""
        return [packed.split(b"\r\n")[2].decode(errors="replace") for packed in self.sent]


@pytest.fixture
def redis_round_trips(monkeypatch):
    """Counts the round trips to Redis made by this thread while the test runs
    (``with redis_round_trips() as trips``), by wrapping redis-py's send (the real send
    still happens)."""
    import contextlib
    import threading

    from redis.connection import AbstractConnection

    real_send = AbstractConnection.send_packed_command
    active: list[RedisRoundTrips] = []
    thread = threading.get_ident()

    def counting_send(connection, command, check_health=True):
        if active and threading.get_ident() == thread:
            packed = command if isinstance(command, bytes) else b"".join(command)
            active[-1].sent.append(packed[:200])
        return real_send(connection, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting_send)

    @contextlib.contextmanager
    def counting():
        trips = RedisRoundTrips()
        active.append(trips)
        try:
            yield trips
        finally:
            active.remove(trips)

    return counting
