"""What migrations run differently per database vendor."""

from django.contrib.postgres import operations as postgres_operations
from django.db.migrations.operations import AddIndex


def run_for_vendor(postgresql: str, sqlite: str):
    """A RunPython function executing ``postgresql`` or ``sqlite``, whichever fits."""

    def run(apps, schema_editor):
        sql = {"postgresql": postgresql, "sqlite": sqlite}.get(schema_editor.connection.vendor)
        if sql:
            schema_editor.execute(sql, params=None)

    return run


class AddIndexConcurrently(postgres_operations.AddIndexConcurrently):
    """``CREATE INDEX CONCURRENTLY`` on PostgreSQL, so that indexing a table of millions
    of rows (the ledger, the audit log) does not hold its writers for the minute it takes;
    a plain ``CREATE INDEX`` elsewhere (SQLite knows no other). The migration holding it
    must be ``atomic = False``."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
