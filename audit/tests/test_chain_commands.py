"""``verify_audit_chain`` finds tampering; ``prune_audit`` cuts a prefix that still verifies.

Tampering needs the append-only trigger out of the way: on PostgreSQL it is disabled and
enabled again around the raw UPDATE or DELETE, on SQLite it is dropped (SQLite DDL is
transactional, so the test's rollback restores it). On PostgreSQL the ALTER TABLE is
rolled back with the test's transaction too.
"""

import contextlib
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from audit.chain import event_hash
from audit.models import AuditChainHead, AuditEvent, AuditOutboxEntry
from audit.selectors import audit_chain_break
from audit.services import audit_record, audit_relay_pending
from tests.app_role import as_owner
from tests.processes import project_env, run, url_of_the_test_database

from .conftest import record_price_changes

EVENT_TABLE = AuditEvent._meta.db_table
TRIGGER = "audit_event_append_only"
SEVEN_YEARS = timedelta(days=7 * 366)

pytestmark = pytest.mark.django_db

on_sqlite_only = pytest.mark.skipif(
    connection.vendor == "postgresql",
    reason="SQLite variant: PostgreSQL's trigger is disabled, not dropped, in the tests above",
)
tampering_on_postgresql = pytest.mark.postgresql(
    "tampers by disabling PostgreSQL's append-only trigger (the SQLite variant drops it)"
)


def record(count: int, *, ago: timedelta | None = None) -> None:
    """Write ``count`` outbox entries through the service, backdated by ``ago``, and relay
    them: they become the next ``count`` events, object ids continuing the sequence."""
    start = AuditEvent.objects.count() + AuditOutboxEntry.objects.count() + 1
    record_price_changes(range(start, start + count))
    if ago is not None:
        with as_owner():  # the app may not rewrite an entry; the test travels in time
            AuditOutboxEntry.objects.update(occurred_at=timezone.now() - ago)
    audit_relay_pending()


def sequences() -> list[int]:
    return list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))


def verify() -> str:
    out = StringIO()
    call_command("verify_audit_chain", stdout=out)
    return out.getvalue()


def verify_fails() -> str:
    with pytest.raises(CommandError) as failed:
        call_command("verify_audit_chain", stdout=StringIO())
    return str(failed.value)


@contextlib.contextmanager
def trigger_disabled():
    """Tampering as the tables' owner can: the app's role may neither alter the table
    nor change an event."""
    with as_owner(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {EVENT_TABLE} DISABLE TRIGGER {TRIGGER}")
            try:
                yield cursor
            finally:
                cursor.execute(f"ALTER TABLE {EVENT_TABLE} ENABLE TRIGGER {TRIGGER}")
        else:
            cursor.execute(f"DROP TRIGGER {TRIGGER}")
            yield cursor


def tamper(sql: str, params: list | None = None) -> None:
    with trigger_disabled() as cursor:
        cursor.execute(sql, params or [])


def forge(sequence: int, **changes) -> None:
    """Rewrite event ``sequence`` as a forger who knows the hash function would: with
    ``changes`` applied and a hash that matches its new contents."""
    event = AuditEvent.objects.get(sequence=sequence)
    for field, value in changes.items():
        setattr(event, field, value)
    forged_hash = event_hash(event, event.previous_hash)
    with trigger_disabled():
        AuditEvent.objects.filter(sequence=sequence).update(**changes, hash=forged_hash)


@pytest.fixture
def six_events():
    record(6)
    assert sequences() == [1, 2, 3, 4, 5, 6]


def altered_after() -> str:
    """SQL for the ``after`` value ``{"price": "0.01"}``."""
    literal = """'{"price": "0.01"}'"""
    return f"{literal}::jsonb" if connection.vendor == "postgresql" else literal


# --- verify_audit_chain -----------------------------------------------------------------


def test_verify_passes_on_an_intact_chain(six_events):
    assert verify() == "Audit chain intact: 6 events verified; 0 waiting to be relayed.\n"


def test_verify_passes_on_an_empty_log():
    assert verify() == "Audit chain intact: 0 events verified; 0 waiting to be relayed.\n"


def test_verify_reports_entries_waiting_without_checking_them(six_events):
    audit_record(action="product.update", object_type="catalog.product", object_id=7)
    audit_record(action="product.update", object_type="catalog.product", object_id=8)

    assert verify() == "Audit chain intact: 6 events verified; 2 waiting to be relayed.\n"


@tampering_on_postgresql
def test_verify_names_an_event_whose_contents_were_altered(six_events):
    tamper(f"UPDATE {EVENT_TABLE} SET after = {altered_after()} WHERE sequence = 3")

    assert AuditEvent.objects.get(sequence=3).after == {"price": "0.01"}
    assert verify_fails() == (
        "Audit chain broken at event 3 (product.update catalog.product:3): "
        "its contents do not match its hash."
    )


@on_sqlite_only
def test_verify_names_an_event_whose_contents_were_altered_on_sqlite(six_events):
    tamper(f"UPDATE {EVENT_TABLE} SET after = {altered_after()} WHERE sequence = 3")

    assert AuditEvent.objects.get(sequence=3).after == {"price": "0.01"}
    assert verify_fails() == (
        "Audit chain broken at event 3 (product.update catalog.product:3): "
        "its contents do not match its hash."
    )


@on_sqlite_only
def test_the_sqlite_trigger_is_in_place_again_in_the_next_test(six_events):
    """A test that dropped the trigger had the DROP rolled back with its transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name = %s", [TRIGGER]
        )
        assert cursor.fetchall() == [(TRIGGER,)]


@tampering_on_postgresql
def test_verify_names_the_event_after_a_deleted_one_and_the_missing_range(six_events):
    tamper(f"DELETE FROM {EVENT_TABLE} WHERE sequence = 4")

    assert sequences() == [1, 2, 3, 5, 6]
    assert verify_fails() == (
        "Audit chain broken at event 5 (product.update catalog.product:5): "
        "events 4 to 4 are missing."
    )


@tampering_on_postgresql
def test_verify_reports_deleted_events_from_the_start(six_events):
    tamper(f"DELETE FROM {EVENT_TABLE} WHERE sequence <= 2")

    assert verify_fails() == (
        "Audit chain broken at event 3 (product.update catalog.product:3): "
        "events 1 to 2 are missing."
    )


@tampering_on_postgresql
def test_verify_reports_the_last_event_deleted(six_events):
    tamper(f"DELETE FROM {EVENT_TABLE} WHERE sequence = 6")

    assert sequences() == [1, 2, 3, 4, 5]
    assert verify_fails() == "Audit chain broken at event 6: events 6 to 6 are missing."


@tampering_on_postgresql
def test_verify_reports_every_event_deleted(six_events):
    tamper(f"DELETE FROM {EVENT_TABLE}")

    assert verify_fails() == "Audit chain broken at event 1: events 1 to 6 are missing."


@tampering_on_postgresql
def test_verify_names_an_event_whose_hash_was_changed(six_events):
    tamper(f"UPDATE {EVENT_TABLE} SET hash = %s WHERE sequence = 3", ["f" * 64])

    assert verify_fails() == (
        "Audit chain broken at event 3 (product.update catalog.product:3): "
        "its contents do not match its hash."
    )


@tampering_on_postgresql
def test_verify_names_the_next_event_when_an_event_was_rehashed_after_a_change(six_events):
    forge(3, after={"price": "0.01"})

    assert AuditEvent.objects.get(sequence=3).hash == event_hash(
        AuditEvent.objects.get(sequence=3), AuditEvent.objects.get(sequence=2).hash
    )
    assert verify_fails() == (
        "Audit chain broken at event 4 (product.update catalog.product:4): "
        "it does not link to the event before it."
    )


@tampering_on_postgresql
def test_verify_names_an_event_whose_previous_hash_was_changed(six_events):
    forge(4, previous_hash="f" * 64)

    assert verify_fails() == (
        "Audit chain broken at event 4 (product.update catalog.product:4): "
        "it does not link to the event before it."
    )


@tampering_on_postgresql
def test_verify_names_the_first_event_when_it_does_not_start_from_the_genesis_hash(six_events):
    forge(1, previous_hash="f" * 64)

    assert verify_fails() == (
        "Audit chain broken at event 1 (product.update catalog.product:1): "
        "it does not link to the event before it."
    )


@tampering_on_postgresql
def test_verify_notices_the_last_event_rehashed_after_a_change(six_events):
    forge(6, after={"price": "0.01"})

    assert verify_fails() == (
        "Audit chain broken at event 6 (product.update catalog.product:6): "
        "the chain head does not match the last event."
    )


@tampering_on_postgresql
def test_verify_notices_two_events_swapped(six_events):
    with trigger_disabled() as cursor:
        for old, new in ((2, -2), (3, 2), (-2, 3)):  # sequence is unique at every step
            cursor.execute(
                f"UPDATE {EVENT_TABLE} SET sequence = %s WHERE sequence = %s", [new, old]
            )

    assert verify_fails() == (
        "Audit chain broken at event 2 (product.update catalog.product:3): "
        "it does not link to the event before it."
    )


@pytest.mark.postgresql(
    "a child process reaches pytest's test database only on PostgreSQL (SQLite's is in memory)"
)
@pytest.mark.django_db(transaction=True)
def test_manage_py_verify_audit_chain_exits_1_on_a_broken_chain(monkeypatch):
    monkeypatch.setattr("audit.services._send_relay", lambda: None)  # the test relays
    record(3)
    env = project_env(DATABASE_URL=url_of_the_test_database())
    command = ["python", "manage.py", "verify_audit_chain"]

    intact = run(command, env)
    tamper(f"UPDATE {EVENT_TABLE} SET object_repr = 'forged' WHERE sequence = 2")
    broken = run(command, env)

    assert (intact.returncode, intact.stdout) == (
        0,
        "Audit chain intact: 3 events verified; 0 waiting to be relayed.\n",
    ), intact.stderr
    assert broken.returncode == 1, broken.stderr
    assert broken.stderr.strip().endswith(
        "CommandError: Audit chain broken at event 2 (product.update catalog.product:2): "
        "its contents do not match its hash."
    ), broken.stderr
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = %s", [TRIGGER])
        assert cursor.fetchall() == [("O",)]  # enabled again


# --- prune_audit ------------------------------------------------------------------------


def prune(*args: str) -> str:
    """``prune_audit`` as deployed: an operator command run as the owner
    (``bin/run owner prune_audit``); the app's role may not delete events."""
    out = StringIO()
    with as_owner():
        call_command("prune_audit", *args, stdout=out)
    return out.getvalue()


def relayed_prune_event() -> AuditEvent:
    assert audit_relay_pending() == 1
    return AuditEvent.objects.get(action="audit.prune")


def assert_cutoff(after: dict, *, older_than: timedelta, between: tuple[datetime, datetime]):
    cutoff = datetime.fromisoformat(after["cutoff"])
    earliest, latest = (moment - older_than for moment in between)
    assert earliest.replace(microsecond=0) <= cutoff <= latest


def test_prune_deletes_the_events_older_than_the_cutoff_and_records_itself():
    record(3, ago=timedelta(days=40))
    record(3, ago=timedelta(days=1))
    started = timezone.now()

    output = prune("--older-than", "30d")

    finished = timezone.now()
    assert output == "Pruned 3 audit events older than 30d.\n"
    assert sequences() == [4, 5, 6]
    event = relayed_prune_event()
    assert (
        event.sequence,
        event.object_type,
        event.object_id,
        event.actor_id,
        event.request_id,
        event.before,
    ) == (7, "audit.auditevent", "", None, "command:prune_audit", None)
    assert event.after == {
        "older_than_seconds": 30 * 86400,
        "cutoff": event.after["cutoff"],
        "deleted": 3,
        "first_kept_sequence": 4,
    }
    assert_cutoff(event.after, older_than=timedelta(days=30), between=(started, finished))
    assert event.object_repr == f"events before {event.after['cutoff']}"
    assert event.previous_hash == AuditEvent.objects.get(sequence=6).hash
    assert verify() == "Audit chain intact: 4 events verified; 0 waiting to be relayed.\n"


def test_prune_of_everything_still_verifies_once_its_event_is_relayed():
    record(6, ago=timedelta(hours=2))
    last_hash = AuditChainHead.objects.get().hash

    output = prune("--older-than", "1h")

    assert output == "Pruned 6 audit events older than 1h.\n"
    assert sequences() == []
    event = relayed_prune_event()
    assert (event.sequence, event.previous_hash) == (7, last_hash)
    assert {
        k: event.after[k] for k in ("older_than_seconds", "deleted", "first_kept_sequence")
    } == {
        "older_than_seconds": 3600,
        "deleted": 6,
        "first_kept_sequence": 7,
    }
    assert verify() == "Audit chain intact: 1 events verified; 0 waiting to be relayed.\n"
    record(2)
    assert sequences() == [7, 8, 9]
    assert audit_chain_break() is None


def test_prune_keeps_everything_when_nothing_is_old_enough():
    record(3, ago=timedelta(days=29))

    output = prune("--older-than", "30d")

    assert output == "Pruned 0 audit events older than 30d.\n"
    assert sequences() == [1, 2, 3]
    event = relayed_prune_event()
    assert (event.sequence, event.after["deleted"], event.after["first_kept_sequence"]) == (4, 0, 1)
    assert verify() == "Audit chain intact: 4 events verified; 0 waiting to be relayed.\n"


def test_prune_removes_only_a_prefix_of_the_chain():
    """An old event relayed after a newer one is kept, so that what remains still links."""
    record(1, ago=timedelta(days=40))
    record(1, ago=timedelta(days=1))
    record(1, ago=timedelta(days=40))

    output = prune("--older-than", "30d")

    assert output == "Pruned 1 audit events older than 30d.\n"
    assert sequences() == [2, 3]
    assert relayed_prune_event().after["first_kept_sequence"] == 2
    assert audit_chain_break() is None


def test_a_second_prune_continues_from_the_first():
    record(2, ago=timedelta(days=100))
    record(2, ago=timedelta(days=40))
    record(2, ago=timedelta(days=1))
    prune("--older-than", "90d")
    relayed_prune_event()

    output = prune("--older-than", "30d")

    assert output == "Pruned 2 audit events older than 30d.\n"
    assert audit_relay_pending() == 1
    assert sequences() == [5, 6, 7, 8]
    last = AuditEvent.objects.get(sequence=8)
    assert (last.action, last.after["deleted"], last.after["first_kept_sequence"]) == (
        "audit.prune",
        2,
        5,
    )
    assert verify() == "Audit chain intact: 4 events verified; 0 waiting to be relayed.\n"


def test_prune_defaults_to_seven_years():
    record(1, ago=timedelta(days=8 * 365))
    record(1, ago=timedelta(days=6 * 365))
    record(1)
    started = timezone.now()

    output = prune()

    finished = timezone.now()
    assert output == "Pruned 1 audit events older than 7y.\n"
    assert sequences() == [2, 3]
    event = relayed_prune_event()
    assert event.after["older_than_seconds"] == 7 * 366 * 86400
    assert_cutoff(event.after, older_than=SEVEN_YEARS, between=(started, finished))
    assert event.after["first_kept_sequence"] == 2
    assert verify() == "Audit chain intact: 3 events verified; 0 waiting to be relayed.\n"


@pytest.mark.parametrize(
    ("older_than", "seconds"),
    [("2w", 14 * 86400), ("12h", 12 * 3600), ("1y", 366 * 86400), (" 30D ", 30 * 86400)],
)
def test_prune_understands_each_unit(older_than, seconds):
    prune("--older-than", older_than)

    assert relayed_prune_event().after["older_than_seconds"] == seconds


@pytest.mark.parametrize("older_than", ["7", "abc", "30x", "-1d", "1.5d", "", "d"])
def test_prune_refuses_what_is_not_a_duration_and_changes_nothing(older_than):
    record(2, ago=timedelta(days=40 * 366))

    with pytest.raises(CommandError) as refused:
        prune(f"--older-than={older_than}")

    assert str(refused.value) == f"{older_than!r} is not a duration like 7y, 52w, 90d or 12h"
    assert sequences() == [1, 2]
    assert AuditOutboxEntry.objects.count() == 0


@pytest.mark.parametrize("older_than", ["0d", "0h", "000y"])
def test_prune_refuses_a_zero_duration_and_changes_nothing(older_than):
    record(2, ago=timedelta(days=1))

    with pytest.raises(CommandError, match="^--older-than must be longer than zero.$"):
        prune(f"--older-than={older_than}")

    assert sequences() == [1, 2]
    assert AuditOutboxEntry.objects.count() == 0


@pytest.mark.parametrize("older_than", ["3000y", "9999999999y"])
def test_prune_refuses_a_duration_reaching_before_year_1_and_changes_nothing(older_than):
    record(2, ago=timedelta(days=1))

    with pytest.raises(CommandError):
        prune(f"--older-than={older_than}")

    assert sequences() == [1, 2]
    assert AuditOutboxEntry.objects.count() == 0
