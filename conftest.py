"""Fixtures shared by every test module."""

import pytest
from django.db import connection


def pytest_collection_modifyitems(config, items):
    """Skip what the current mode cannot run, saying why."""
    on_postgresql = connection.vendor == "postgresql"
    from django.conf import settings

    has_broker = not settings.CELERY_TASK_ALWAYS_EAGER
    for item in items:
        if "postgresql" in item.keywords and not on_postgresql:
            item.add_marker(
                pytest.mark.skip(
                    reason="needs PostgreSQL: SQLite takes one lock for the whole database, "
                    "so row-level races cannot happen there (run with DATABASE_URL set)"
                )
            )
        if "services" in item.keywords and not has_broker:
            item.add_marker(
                pytest.mark.skip(
                    reason="needs a broker and a real Celery worker: embedded mode runs "
                    "tasks in-process (run with REDIS_URL set)"
                )
            )


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
