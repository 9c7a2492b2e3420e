"""The app's database role may not rewrite the stock ledger, the audit log or the stock
event log.

Each test grants a probe role of its own (``grant_app_role``, as the owner) inside the
test's transaction, which takes it back, role and all, and then acts as it with
``SET ROLE``: so these run on any PostgreSQL test run. With ``DATABASE_APP_ROLE`` set the
whole suite runs as that role (``tests/app_role.py``); the last tests check that it does.
"""

import contextlib
import io
import threading
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import IntegrityError, ProgrammingError, connection, models, transaction
from django.utils import timezone

from audit.models import AuditEvent, AuditOutboxEntry
from audit.services import audit_record, audit_relay_pending
from events.models import (
    DeliveryStatus,
    StockEvent,
    StoreEventSequence,
    WebhookAttempt,
    WebhookDelivery,
)
from events.tasks import prune_stock_events
from events.webhooks.services import subscription_create
from inventory_site.privileges.grants import RoleRefused, grant_app_role
from stock.models import Movement, StockLevel
from stock.services import StockLine, stock_receive, stock_transfer
from tests.app_role import active_role, as_owner
from tests.factories import ProductFactory, StockEventFactory, StoreFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgresql("database roles are PostgreSQL's")]

MOVEMENT, EVENT, OUTBOX = "stock_movement", "audit_event", "audit_outbox"
WEBHOOK_ATTEMPT = "events_webhookattempt"
STOCK_EVENT, SEQUENCES = "events_stockevent", "events_storeeventsequence"
INSUFFICIENT_PRIVILEGE = "42501"
# What the role may do where it may not do everything; every other table of a model: all
# four. Written out here rather than read from the module that grants them.
RESTRICTED = {
    MOVEMENT: {"SELECT", "INSERT"},
    EVENT: {"SELECT", "INSERT"},
    STOCK_EVENT: {"SELECT", "INSERT"},
    OUTBOX: {"SELECT", "INSERT", "DELETE"},
    WEBHOOK_ATTEMPT: {"SELECT", "INSERT", "DELETE"},
    SEQUENCES: {"SELECT", "INSERT", "UPDATE"},
    "django_migrations": {"SELECT"},
}
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@pytest.fixture
def probe_role() -> str:
    """A role granted as ``bin/run migrate`` grants the app's, until the test ends."""
    role = f"{connection.settings_dict['NAME']}_probe"[:63]
    with as_owner():
        grant_app_role(role)
    return role


@contextlib.contextmanager
def acting_as(role: str):
    with connection.cursor() as cursor:
        cursor.execute(f'SET ROLE "{role}"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


def execute(sql: str, params=()) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def refused_for_privilege(sql: str) -> str:
    with pytest.raises(ProgrammingError) as refusal:
        execute(sql)
    assert refusal.value.__cause__.pgcode == INSUFFICIENT_PRIVILEGE, refusal.value
    return str(refusal.value).strip()


@pytest.fixture
def history():
    """A movement and its relayed audit event, and an outbox entry waiting."""
    store, product = StoreFactory(code="berlin-01"), ProductFactory(sku="TEE")
    stock_receive(store=store, product=product, quantity=5)
    audit_relay_pending()
    audit_record(action="product.update", object_type="catalog.product", object_id=1)
    return store, product


def rows(table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY id")
        return cursor.fetchall()


CHANGES = {
    "UPDATE": "UPDATE {table} SET id = id",
    "DELETE": "DELETE FROM {table}",
    "TRUNCATE": "TRUNCATE {table}",
}


@pytest.mark.parametrize("table", [MOVEMENT, EVENT, STOCK_EVENT])
@pytest.mark.parametrize("change", CHANGES)
def test_the_role_may_not_update_delete_or_truncate_the_ledger_or_the_audit_log(
    probe_role, history, table, change
):
    before = rows(table)
    assert len(before) == 1

    with acting_as(probe_role):
        message = refused_for_privilege(CHANGES[change].format(table=table))
        assert rows(table) == before  # and it may read them

    assert message == f"permission denied for table {table}"
    assert rows(table) == before


@pytest.mark.parametrize("table", [MOVEMENT, EVENT])
@pytest.mark.parametrize("change", ["UPDATE", "DELETE"])
def test_the_owner_may_ask_and_only_the_trigger_refuses(history, table, change):
    before = rows(table)

    with as_owner(), pytest.raises(IntegrityError, match=f"{table} is append-only: {change}"):
        execute(CHANGES[change].format(table=table))

    assert rows(table) == before


@pytest.mark.parametrize("table", [MOVEMENT, EVENT, STOCK_EVENT])
def test_the_owner_may_truncate_which_no_row_trigger_sees(history, table):
    """Why the role must not hold TRUNCATE: the append-only triggers are row triggers."""
    before = rows(table)

    with as_owner(), transaction.atomic():
        execute("SET CONSTRAINTS ALL IMMEDIATE")  # the history's deferred key checks
        execute(f"TRUNCATE {table}")
        assert rows(table) == []
        transaction.set_rollback(True)

    assert rows(table) == before


def test_the_owner_may_not_rewrite_a_stock_event_but_may_prune_it(history):
    """Stock events are pruned after their retention, by the owner: only UPDATE is
    refused by the trigger."""
    before = rows(STOCK_EVENT)

    with as_owner(), pytest.raises(IntegrityError, match=f"{STOCK_EVENT} is append-only: UPDATE"):
        execute(f"UPDATE {STOCK_EVENT} SET on_hand = on_hand + 1")
    assert rows(STOCK_EVENT) == before

    with as_owner(), transaction.atomic():
        assert execute(f"DELETE FROM {STOCK_EVENT}") == len(before) == 1
        transaction.set_rollback(True)


def test_the_role_may_take_event_numbers_but_not_delete_a_stores_sequence(probe_role, history):
    before = list(StoreEventSequence.objects.values_list("store_id", "last_seq"))

    with acting_as(probe_role):
        stock_receive(store=history[0], product=history[1], quantity=1)
        message = refused_for_privilege(f"DELETE FROM {SEQUENCES}")

    assert message == f"permission denied for table {SEQUENCES}"
    assert before == [(history[0].pk, 1)]
    assert list(StoreEventSequence.objects.values_list("store_id", "last_seq")) == [
        (history[0].pk, 2)
    ]


def test_the_role_may_add_read_and_relay_outbox_entries_but_not_rewrite_them(probe_role, history):
    [entry] = AuditOutboxEntry.objects.values_list("id", "action")

    with acting_as(probe_role):
        update = refused_for_privilege(f"UPDATE {OUTBOX} SET action = 'forged'")
        truncate = refused_for_privilege(f"TRUNCATE {OUTBOX}")
        assert AuditOutboxEntry.objects.values_list("id", "action").get() == entry
        relayed = audit_relay_pending()  # INSERT the event, DELETE the entry

    assert (update, truncate) == (f"permission denied for table {OUTBOX}",) * 2
    assert relayed == 1
    assert AuditOutboxEntry.objects.count() == 0
    assert AuditEvent.objects.order_by("sequence").values_list("action", flat=True)[1] == (
        "product.update"
    )


def test_the_role_runs_the_stock_write_paths_and_the_audit_relay(probe_role, history):
    store, product = history
    hamburg = StoreFactory(code="hamburg-01")

    with acting_as(probe_role):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone() == (probe_role,)
        stock_receive(store=store, product=product, quantity=3)
        stock_transfer(
            from_store=store, to_store=hamburg, lines=[StockLine(product=product, quantity=2)]
        )
        relayed = audit_relay_pending()

    levels = dict(StockLevel.objects.values_list("store__code", "on_hand"))
    assert levels == {"berlin-01": 6, "hamburg-01": 2}
    assert Movement.objects.count() == 4
    events = StockEvent.objects.order_by("store_id", "seq")
    assert list(events.values_list("store__code", "seq")) == [
        ("berlin-01", 1), ("berlin-01", 2), ("berlin-01", 3), ("hamburg-01", 1)
    ]  # fmt: skip
    assert relayed == 4  # the waiting entry, the receive and the transfer's two


def test_pruning_the_audit_log_as_the_role_is_refused_and_deletes_nothing(probe_role, history):
    before = rows(EVENT)

    with acting_as(probe_role), pytest.raises(ProgrammingError) as refusal:
        call_command("prune_audit", "--older-than", "1h", stdout=io.StringIO())

    assert refusal.value.__cause__.pgcode == INSUFFICIENT_PRIVILEGE
    assert rows(EVENT) == before


@pytest.fixture
def old_stock_events(db):
    store = StoreFactory(code="bremen-01")
    StockEventFactory.log(store, 3, at=timezone.now() - timedelta(days=400))


@pytest.mark.parametrize("change", CHANGES)
def test_the_role_appends_to_the_stock_event_log_and_changes_nothing_in_it(
    probe_role, old_stock_events, change
):
    before = rows(STOCK_EVENT)

    with acting_as(probe_role):
        message = refused_for_privilege(CHANGES[change].format(table=STOCK_EVENT))
        StockEventFactory(store=StoreFactory(code="kiel-01"))

    assert message == f"permission denied for table {STOCK_EVENT}"
    assert rows(STOCK_EVENT)[: len(before)] == before
    assert len(rows(STOCK_EVENT)) == len(before) + 1


def test_pruning_the_stock_event_log_is_the_owner_s(probe_role, old_stock_events, caplog):
    """As the role the command says who prunes, a dry run counts, beat's task deletes
    nothing and warns; as the owner it prunes."""
    before = rows(STOCK_EVENT)

    with acting_as(probe_role):
        with pytest.raises(CommandError, match="bin/run owner prune_events"):
            call_command("prune_events", stdout=io.StringIO())
        counted = io.StringIO()
        call_command("prune_events", "--dry-run", stdout=counted)
        by_beat = prune_stock_events()
    unchanged = rows(STOCK_EVENT)
    pruned = io.StringIO()
    with as_owner():
        call_command("prune_events", stdout=pruned)

    assert counted.getvalue().startswith("Would prune 3 stock events")
    assert by_beat == {"events": None, "deliveries": 0, "attempts": 0}
    assert "Run `bin/run owner prune_events` daily" in caplog.text
    assert unchanged == before
    assert pruned.getvalue().startswith("Pruned 3 stock events older than 30 days.\n")
    assert rows(STOCK_EVENT) == []


def test_the_role_prunes_finished_webhook_deliveries_by_beat(probe_role, old_stock_events):
    """Beat's daily task, as the role: the deliveries and attempts go, the events stay
    (those are the owner's)."""
    store = StoreFactory(code="lubeck-01")
    subscription = subscription_create(
        store=store, url="https://hooks.example.com/in", event_types=[], actor=None
    )
    finished = WebhookDelivery.objects.create(
        subscription=subscription, store=store, seq=1, event_type="stock.changed",
        payload={"store": store.code, "seq": 1}, status=DeliveryStatus.SUCCEEDED, attempts=1,
    )  # fmt: skip
    WebhookAttempt.objects.create(
        delivery=finished, number=1, succeeded=True, duration_ms=5, at=timezone.now()
    )
    WebhookDelivery.objects.update(updated_at=timezone.now() - timedelta(days=400))
    events = rows(STOCK_EVENT)

    with acting_as(probe_role):
        by_beat = prune_stock_events()

    assert by_beat == {"events": None, "deliveries": 1, "attempts": 1}
    assert not WebhookDelivery.objects.exists() and not WebhookAttempt.objects.exists()
    assert rows(STOCK_EVENT) == events


def granted(role: str) -> dict[str, set[str]]:
    """{table: privileges} the role holds on every table of the database's schema."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT table_name, privilege.name FROM information_schema.tables
             CROSS JOIN unnest(%s::text[]) AS privilege(name)
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
               AND has_table_privilege(%s, quote_ident(table_name), privilege.name)
            """,
            [list(TABLE_PRIVILEGES), role],
        )
        held: dict[str, set[str]] = {}
        for table, privilege in cursor.fetchall():
            held.setdefault(table, set()).add(privilege)
        return held


def test_the_role_holds_exactly_the_privileges_of_every_installed_models_table(probe_role):
    expected = {
        model._meta.db_table: RESTRICTED.get(
            model._meta.db_table, {"SELECT", "INSERT", "UPDATE", "DELETE"}
        )
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy
    } | {"django_migrations": RESTRICTED["django_migrations"]}

    # One sequence per table numbered by the database (the migration history's too).
    numbered = 1 + sum(
        isinstance(model._meta.pk, models.AutoField)
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy
    )

    assert granted(probe_role) == expected
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FILTER (WHERE has_sequence_privilege(%s, oid, 'USAGE')),
                   count(*) FILTER (WHERE has_sequence_privilege(%s, oid, 'UPDATE')), count(*)
              FROM pg_class WHERE relkind = 'S' AND relnamespace = current_schema()::regnamespace
            """,
            [probe_role, probe_role],
        )
        assert cursor.fetchone() == (numbered, 0, numbered)  # nextval, never setval


def test_granting_again_takes_back_what_was_added_and_changes_nothing_else(probe_role):
    first = granted(probe_role)
    with as_owner():
        execute(f'GRANT UPDATE, DELETE, TRUNCATE ON {MOVEMENT}, {EVENT} TO "{probe_role}"')
        assert granted(probe_role)[MOVEMENT] == set(TABLE_PRIVILEGES) - {"REFERENCES", "TRIGGER"}

        grant_app_role(probe_role)
        grant_app_role(probe_role)

    assert granted(probe_role) == first


@pytest.mark.parametrize(
    "attributes, refusal",
    [
        ("SUPERUSER", "is a superuser or may create roles"),
        ("CREATEROLE", "is a superuser or may create roles"),
        ("IN ROLE {owner}", "is, or is a member of, the tables' owner {owner}"),
        # PostgreSQL's predefined role: UPDATE and DELETE on every table, which no
        # grant on a table shows and no REVOKE on one takes back.
        ("IN ROLE pg_write_all_data", "more than it is granted .*UPDATE on stock_movement"),
    ],
)
def test_a_role_that_would_bypass_the_grants_is_refused(attributes, refusal):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableowner FROM pg_tables WHERE tablename = '{MOVEMENT}'")
        [owner] = cursor.fetchone()
    role = f"{connection.settings_dict['NAME']}_bypass"[:63]
    with as_owner():
        execute(f'CREATE ROLE "{role}" LOGIN {attributes.format(owner=owner)}')

        with pytest.raises(RoleRefused, match=refusal.format(owner=owner)):
            grant_app_role(role)

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_class, aclexplode(relacl) AS item "
                "WHERE item.grantee = %s::regrole",
                [role],
            )
            assert cursor.fetchone() == (0,)  # nothing granted


@pytest.mark.parametrize("name", ['app"; DROP TABLE stock_movement; --', "App", "9app"])
def test_a_name_that_is_not_a_plain_role_name_is_refused(name):
    with pytest.raises(CommandError, match="is not a plain role name"):
        call_command("grant_app_role", name, stdout=io.StringIO())

    assert Movement.objects.count() == 0  # the table is still there


def test_the_command_reports_what_it_granted_and_sets_the_password_from_the_environment(
    probe_role, monkeypatch
):
    monkeypatch.setenv("PROBE_PASSWORD", "s3cret-from-the-environment")
    out = io.StringIO()

    with as_owner():
        call_command("grant_app_role", probe_role, "--password-env", "PROBE_PASSWORD", stdout=out)
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [probe_role])
            [password] = cursor.fetchone()

    lines = out.getvalue().splitlines()
    assert password.startswith("SCRAM-SHA-256$")
    assert lines[2:6] == [
        f"  {'SELECT, INSERT, DELETE':<30} {OUTBOX}, {WEBHOOK_ATTEMPT}",
        f"  {'SELECT, INSERT, UPDATE':<30} {SEQUENCES}",
        f"  {'SELECT, INSERT':<30} {EVENT}, {STOCK_EVENT}, {MOVEMENT}",
        f"  {'SELECT':<30} django_migrations",
    ]
    assert lines[-1] == (
        f"{probe_role} may not UPDATE, DELETE or TRUNCATE {EVENT}, django_migrations, "
        f"{STOCK_EVENT}, {MOVEMENT}; it may TRUNCATE no table."
    )
    assert "s3cret" not in out.getvalue()


def test_the_command_refuses_an_empty_password_variable(probe_role, monkeypatch):
    monkeypatch.setenv("PROBE_PASSWORD", "")

    with pytest.raises(CommandError, match="--password-env PROBE_PASSWORD: the variable is empty"):
        call_command("grant_app_role", probe_role, "--password-env", "PROBE_PASSWORD")


def test_the_sql_it_prints_grants_the_logs_select_and_insert_only():
    out = io.StringIO()

    call_command("grant_app_role", "inventory_app", "--sql", stdout=out)

    statements = out.getvalue().split(";\n")
    appended = f'"{EVENT}", "{STOCK_EVENT}", "{MOVEMENT}"'
    assert f'GRANT SELECT, INSERT ON TABLE {appended} TO "inventory_app"' in statements
    assert not any("TRUNCATE" in statement for statement in statements)


# --- the suite as the app's role (DATABASE_APP_ROLE) -----------------------------------

as_the_app_role = pytest.mark.skipif(
    not active_role(), reason="the suite runs as the app's role only with DATABASE_APP_ROLE"
)


def current_user() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, session_user")
        return cursor.fetchone()


@as_the_app_role
@pytest.mark.django_db(transaction=True)
def test_every_connection_of_the_suite_runs_as_the_app_role():
    """Transactional: the flush after it is the owner's, and the next test is the role's
    again (the last test of this module checks)."""
    role = active_role()
    seen = {}

    def in_a_thread():
        from django.db import connection as own

        try:
            with own.cursor() as cursor:
                cursor.execute("SELECT current_user")
                seen["thread"] = cursor.fetchone()[0]
        finally:
            own.close()

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()

    assert current_user()[0] == role != current_user()[1]
    assert seen == {"thread": role}
    assert refused_for_privilege(f"TRUNCATE {MOVEMENT}") == (
        f"permission denied for table {MOVEMENT}"
    )


@as_the_app_role
def test_after_the_owners_flush_the_suite_is_the_app_role_again():
    assert current_user()[0] == active_role()
