import sqlite3

import pytest

from stock import checks


@pytest.mark.django_db
def test_an_old_sqlite_fails_the_checks_with_a_hint(monkeypatch):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("the check concerns the embedded mode's SQLite")
    assert checks.sqlite_is_recent_enough(databases=["default"]) == []

    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    (error,) = checks.sqlite_is_recent_enough(databases=["default"])
    assert error.id == "stock.E001" and "3.35" in error.hint
