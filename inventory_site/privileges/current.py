"""What the database user of this connection may do, asked of the database itself: a
least-privilege deployment's app role may not do everything the owner may."""

from django.db import connection


def may_delete(*models) -> bool:
    """Whether this connection's database user may delete rows of every one of these
    models' tables. Only PostgreSQL has roles here: elsewhere, yes."""
    if connection.vendor != "postgresql":
        return True
    tables = [connection.ops.quote_name(model._meta.db_table) for model in models]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT bool_and(has_table_privilege(name, 'DELETE')) FROM unnest(%s::text[]) AS name",
            [tables],
        )
        return cursor.fetchone()[0]
