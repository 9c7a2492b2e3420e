"""The suite as the application's database role (``DATABASE_APP_ROLE``), as a deployment
runs: the owner creates and migrates the test database, every later connection runs as
the role (README, "Least privilege")."""

import contextlib
import os

import pytest
from django.db import connections
from django.db.backends.postgresql.operations import DatabaseOperations


@contextlib.contextmanager
def connections_as(role: str):
    """Every PostgreSQL connection opened inside, by this process or a process it starts,
    runs as ``role``: libpq's ``PGOPTIONS`` sets it when the connection starts, as
    ``SET ROLE`` would. Django's flush between transactional tests is the owner's alone
    (it TRUNCATEs every table): it runs after ``SET ROLE NONE`` (the connecting user),
    and ``RESET ROLE`` returns to the role."""
    previous = os.environ.get("PGOPTIONS")
    os.environ["PGOPTIONS"] = f"{previous or ''} -c role={role}".strip()
    connections.close_all()
    flush = DatabaseOperations.execute_sql_flush

    def flush_as_owner(operations, sql_list):
        with operations.connection.cursor() as cursor:
            cursor.execute("SET ROLE NONE")
        try:
            flush(operations, sql_list)
        finally:
            with operations.connection.cursor() as cursor:
                cursor.execute("RESET ROLE")

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(DatabaseOperations, "execute_sql_flush", flush_as_owner)
            yield
    finally:
        if previous is None:
            del os.environ["PGOPTIONS"]
        else:
            os.environ["PGOPTIONS"] = previous
        connections.close_all()


def active_role() -> str:
    """The role the suite runs as, or "" when it runs as the connecting user."""
    from django.conf import settings
    from django.db import connection

    return settings.DATABASE_APP_ROLE if connection.vendor == "postgresql" else ""


@contextlib.contextmanager
def as_owner():
    """The statements inside run as the tables' owner (the connecting user), what an
    operator command run with DATABASE_OWNER_URL, or an intruder holding the owner's
    password, could do; outside the suite runs as the app's role, if it does."""
    from django.db import connection

    if not active_role():
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET ROLE NONE")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
