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
