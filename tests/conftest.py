"""Fixtures shared by the cross-app tests in this folder."""

import pytest
from django.test import override_settings

from inventory_site.celery import app as celery_app
from tests.processes import RedisServer, free_port, redis_cache


@pytest.fixture
def dead_cache():
    """The cache is a Redis at a port where none listens; restored afterwards. Yields
    the port."""
    port = free_port()
    dead = redis_cache(port)
    with override_settings(CACHES=dead):
        yield port


@pytest.fixture
def dead_broker(settings):
    """A real broker is configured, at a port where nothing listens. Yields a function
    that brings the configured broker back (also called at teardown)."""
    eager, configured = settings.CELERY_TASK_ALWAYS_EAGER, celery_app.conf.broker_url

    def restore():
        settings.CELERY_TASK_ALWAYS_EAGER = eager
        celery_app.conf.broker_url = configured

    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    yield restore
    restore()


@pytest.fixture
def private_broker(settings, tmp_path):
    """A redis-server of this test's own as the Celery broker (in either mode), so that
    its queues hold exactly what the test sent. Yields the server. Send with
    ``connection=celery_app.connection_for_write()``: the app's producer pool keeps the
    broker it first connected to."""
    if not RedisServer.available():
        pytest.skip("needs redis-server on PATH for a private broker")
    server = RedisServer(free_port(), tmp_path)
    server.start()
    eager, configured = settings.CELERY_TASK_ALWAYS_EAGER, celery_app.conf.broker_url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.broker_url = f"redis://127.0.0.1:{server.port}/0"
    try:
        yield server
    finally:
        settings.CELERY_TASK_ALWAYS_EAGER = eager
        celery_app.conf.broker_url = configured
        server.stop()
