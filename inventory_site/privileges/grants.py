"""What the application's role may do to each table, and the SQL that grants exactly that.

The rule is computed from the installed models, so a new model's table is covered the
next time it is applied (``bin/run migrate`` applies it after migrating when
``DATABASE_APP_ROLE`` is set):

- the table of every model (many-to-many tables too): SELECT, INSERT, UPDATE, DELETE;
- the ledgers that record history, the stock movements and the audit events: SELECT and
  INSERT only. Their triggers refuse UPDATE and DELETE to everyone; the role may not even
  ask, nor TRUNCATE them, which no row trigger sees. Pruning the audit log
  (``prune_audit``) is the owner's;
- the stock event log: SELECT and INSERT only, so that what webhooks and streams deliver
  is what the changes wrote; its trigger refuses UPDATE to everyone. Pruning it
  (``prune_events``) is the owner's;
- the stores' event sequences: SELECT, INSERT and UPDATE (a change takes its numbers
  with an upsert); a row is never deleted while its store exists;
- the audit outbox: SELECT, INSERT and DELETE. The relay deletes the entries it chained;
  nothing rewrites an entry on its way into the log;
- the webhooks' attempt log: SELECT, INSERT and DELETE (deleting a subscription takes
  its deliveries and their attempts); an attempt, once logged, is not rewritten;
- the migration history: SELECT (only the owner migrates);
- no table gets TRUNCATE, REFERENCES or TRIGGER; the tables' sequences get USAGE and
  SELECT (``nextval``, not ``setval``); the functions of the tables' triggers EXECUTE.

Applying revokes whatever else the role held on these objects first, in the same
transaction, so running it again after a model moved between the lists converges.
"""

import dataclasses
import re

from django.apps import apps
from django.db import connections, transaction
from django.db.migrations.recorder import MigrationRecorder
from psycopg2.extensions import encrypt_password

READ_WRITE = ("SELECT", "INSERT", "UPDATE", "DELETE")
APPEND_ONLY = ("SELECT", "INSERT")
# Models whose table the role may not change freely, by label.
RESTRICTED_MODELS = {
    "stock.Movement": APPEND_ONLY,
    "audit.AuditEvent": APPEND_ONLY,
    "events.StockEvent": APPEND_ONLY,
    "audit.AuditOutboxEntry": ("SELECT", "INSERT", "DELETE"),
    "events.WebhookAttempt": ("SELECT", "INSERT", "DELETE"),
    "events.StoreEventSequence": ("SELECT", "INSERT", "UPDATE"),
}
MIGRATION_HISTORY = ("SELECT",)
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT")
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")

# An unquoted PostgreSQL identifier: nothing a statement could be smuggled through.
ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class RoleRefused(Exception):
    """The role cannot be the app's role: granting to it would restrict nothing."""


def table_privileges() -> dict[str, tuple[str, ...]]:
    """{table: privileges} for every table of an installed model and the migration
    history, whether or not the table exists yet."""
    restricted = {
        apps.get_model(label)._meta.db_table: privileges
        for label, privileges in RESTRICTED_MODELS.items()
    }
    tables = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.managed and not meta.proxy:
            tables[meta.db_table] = restricted.get(meta.db_table, READ_WRITE)
    tables[MigrationRecorder.Migration._meta.db_table] = MIGRATION_HISTORY
    return dict(sorted(tables.items()))


@dataclasses.dataclass(frozen=True)
class Grants:
    """What ``role`` is granted in one database, read from the models and its catalog."""

    role: str
    database: str
    schema: str
    tables: dict[str, tuple[str, ...]]  # the existing ones
    missing_tables: list[str]  # of installed models, not migrated yet
    sequences: list[str]
    functions: list[str]

    def by_privileges(self) -> dict[tuple[str, ...], list[str]]:
        """The tables grouped by what the role may do to them, the freest first."""
        groups: dict[tuple[str, ...], list[str]] = {}
        for table, privileges in self.tables.items():
            groups.setdefault(privileges, []).append(table)
        return dict(sorted(groups.items(), key=lambda group: -len(group[0])))

    def statements(self) -> list[str]:
        """The SQL, in order, for the owner to run in one transaction."""
        role = quote(self.role)
        statements = [
            f"GRANT CONNECT ON DATABASE {quote(self.database)} TO {role}",
            f"GRANT USAGE ON SCHEMA {quote(self.schema)} TO {role}",
            f"REVOKE ALL ON TABLE {', '.join(map(quote, self.tables))} FROM {role}",
        ]
        for privileges, tables in self.by_privileges().items():
            statements.append(
                f"GRANT {', '.join(privileges)} ON TABLE {', '.join(map(quote, tables))} TO {role}"
            )
        if self.sequences:
            sequences = ", ".join(self.sequences)
            statements += [
                f"REVOKE ALL ON SEQUENCE {sequences} FROM {role}",
                f"GRANT {', '.join(SEQUENCE_PRIVILEGES)} ON SEQUENCE {sequences} TO {role}",
            ]
        if self.functions:
            statements.append(f"GRANT EXECUTE ON FUNCTION {', '.join(self.functions)} TO {role}")
        return statements


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_grants(role: str, *, using: str = "default") -> Grants:
    """The grants ``role`` should hold in the database behind ``using`` (PostgreSQL)."""
    if not ROLE_NAME.fullmatch(role):
        raise RoleRefused(
            f"{role!r} is not a plain role name (lower-case letters, digits and _, "
            "not starting with a digit, at most 63)."
        )
    connection = connections[using]
    if connection.vendor != "postgresql":
        raise RoleRefused(f"database roles are PostgreSQL's; {using!r} is {connection.vendor}.")
    wanted = table_privileges()
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor, include_views=False))
        tables = {table: wanted[table] for table in wanted if table in existing}
        cursor.execute("SELECT current_database(), current_schema()")
        database, schema = cursor.fetchone()
        names = [quote(table) for table in tables]
        cursor.execute(
            """
            SELECT DISTINCT sequence.oid::regclass::text
              FROM pg_depend AS dependency
              JOIN pg_class AS sequence ON sequence.oid = dependency.objid
             WHERE dependency.classid = 'pg_class'::regclass
               AND dependency.refclassid = 'pg_class'::regclass
               AND dependency.refobjid = ANY(%s::regclass[])
               AND sequence.relkind = 'S'
             ORDER BY 1
            """,
            [names],
        )
        sequences = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            """
            SELECT DISTINCT tgfoid::regprocedure::text FROM pg_trigger
             WHERE NOT tgisinternal AND tgrelid = ANY(%s::regclass[])
             ORDER BY 1
            """,
            [names],
        )
        functions = [row[0] for row in cursor.fetchall()]
    return Grants(
        role=role,
        database=database,
        schema=schema,
        tables=tables,
        missing_tables=sorted(set(wanted) - set(tables)),
        sequences=sequences,
        functions=functions,
    )


def grant_app_role(role: str, *, password: str | None = None, using: str = "default") -> Grants:
    """Create ``role`` (LOGIN) if it does not exist, set its password if one is given,
    and grant it exactly ``read_grants(role)``, all in one transaction. The caller is
    the owner of the tables (``DATABASE_OWNER_URL``), and CREATEROLE to create the role.

    Refuses a role that would pass the checks anyway: a superuser, a role that may
    create roles (and so grant itself the owner's), or the owner or a member of it.
    """
    connection = connections[using]
    grants = read_grants(role, using=using)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = %s", [role])
        found = cursor.fetchone()
        if found is None:
            cursor.execute(f"CREATE ROLE {quote(role)} LOGIN")
        elif found[0] or found[1]:
            raise RoleRefused(
                f"{role} is a superuser or may create roles: it would bypass any grant."
            )
        if password is not None:
            # The server gets the password's SCRAM verifier, made here by libpq, never
            # the password: a statement may be written to the server's log. On
            # psycopg's own cursor, as Django's would log it with DEBUG on.
            verifier = encrypt_password(password, role, connection.connection, "scram-sha-256")
            with connection.connection.cursor() as raw:
                raw.execute(f"ALTER ROLE {quote(role)} PASSWORD %s", [verifier])
        cursor.execute(
            """
            SELECT DISTINCT relowner::regrole::text FROM pg_class
             WHERE oid = ANY(%s::regclass[]) AND pg_has_role(%s, relowner, 'MEMBER')
            """,
            [[quote(table) for table in grants.tables], role],
        )
        owners = [row[0] for row in cursor.fetchall()]
        if owners:
            raise RoleRefused(
                f"{role} is, or is a member of, the tables' owner {', '.join(owners)}: "
                "an owner may do anything to its tables."
            )
        for statement in grants.statements():
            cursor.execute(statement)
        excess = privileges_beyond(cursor, grants)
        if excess:
            raise RoleRefused(
                f"{role} holds, through a role it is a member of, more than it is granted "
                f"({'; '.join(excess)}): revoke that membership (e.g. pg_write_all_data)."
            )
    return grants


def privileges_beyond(cursor, grants: Grants) -> list[str]:
    """What ``grants.role`` may do to the tables beyond what it was granted, as
    PostgreSQL answers it: inherited roles (``pg_write_all_data``, a role the owner
    granted by hand) count, which the catalog of direct grants does not show."""
    checks = [
        (table, privilege)
        for table, allowed in grants.tables.items()
        for privilege in TABLE_PRIVILEGES
        if privilege not in allowed
    ]
    if not checks:
        return []
    cursor.execute(
        """
        SELECT check_.table_name, check_.privilege
          FROM unnest(%s::text[], %s::text[]) AS check_(table_name, privilege)
         WHERE has_table_privilege(%s, quote_ident(check_.table_name), check_.privilege)
        """,
        [[table for table, _ in checks], [privilege for _, privilege in checks], grants.role],
    )
    return [f"{privilege} on {table}" for table, privilege in cursor.fetchall()]
