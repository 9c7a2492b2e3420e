"""System checks of what the stock services need from the database."""

from django.core.checks import Error, register
from django.db import connections

# UPDATE ... FROM (multi-row changes) came in SQLite 3.33, INSERT ... ON CONFLICT ...
# RETURNING (claiming an Idempotency-Key) in 3.35.
MINIMUM_SQLITE = (3, 35)


@register("database")
def sqlite_is_recent_enough(app_configs=None, databases=None, **kwargs):
    errors = []
    for alias in databases or ():
        connection = connections[alias]
        if connection.vendor != "sqlite":
            continue
        import sqlite3

        if sqlite3.sqlite_version_info < MINIMUM_SQLITE:
            errors.append(
                Error(
                    f"SQLite {sqlite3.sqlite_version} is too old for the stock services.",
                    hint="The embedded mode needs SQLite 3.35 or later (Python built "
                    "against it), or set DATABASE_URL to a PostgreSQL database.",
                    id="stock.E001",
                )
            )
    return errors
