"""Audit events are append-only in the database, and the relay chains them exactly once.

The trigger tests bypass the services with raw SQL on purpose, as the tables' owner: the
log must hold even against a writer that does not go through Python and holds the owner's
rights (the app's role may not even ask, tests/test_database_privileges.py). In
non-transactional tests on_commit never runs, so each test relays the outbox itself.
"""

import pytest
from django.db import IntegrityError, connection, transaction

from audit.chain import GENESIS_HASH, event_hash
from audit.models import AuditChainHead, AuditEvent, AuditOutboxEntry
from audit.selectors import audit_chain_break
from audit.services import PRUNE_SETTING, audit_relay_batch, audit_relay_pending
from stock.services import stock_receive
from tests.app_role import as_owner
from tests.concurrency import run_together
from tests.factories import ProductFactory, StoreFactory

from .conftest import record_price_changes

EVENT_TABLE = AuditEvent._meta.db_table

pytestmark = pytest.mark.django_db

POSTGRESQL_TRIGGER = "PostgreSQL's own trigger (the SQLite one is tested below)"
PRUNE_SETTING_ONLY = "the prune setting is read by PostgreSQL's trigger only"
SQLITE_DELETES = (
    "SQLite keeps DELETE open because Django empties its tables with DELETE between tests"
)


def record(count: int, *, start: int = 1) -> list[int]:
    """Write ``count`` outbox entries through the service; returns their ids in order."""
    record_price_changes(range(start, start + count))
    return list(AuditOutboxEntry.objects.order_by("pk").values_list("pk", flat=True))


def raw(sql: str, params: list | None = None):
    with as_owner(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def snapshot(event: AuditEvent) -> tuple:
    return (event.sequence, event.action, event.after, event.previous_hash, event.hash)


@pytest.fixture
def event() -> AuditEvent:
    record(1)
    audit_relay_pending()
    return AuditEvent.objects.get()


# --- the trigger ------------------------------------------------------------------------


@pytest.mark.postgresql(POSTGRESQL_TRIGGER)
@pytest.mark.parametrize(
    "assignment", ['after = \'{"price": "0.01"}\'::jsonb', "sequence = 99", "hash = 'x'"]
)
def test_postgresql_refuses_a_raw_update_of_an_event(event, assignment):
    before = snapshot(event)

    with pytest.raises(IntegrityError, match="audit_event is append-only: UPDATE refused"):
        raw(f"UPDATE {EVENT_TABLE} SET {assignment} WHERE id = %s", [event.pk])

    event.refresh_from_db()
    assert snapshot(event) == before


@pytest.mark.postgresql(SQLITE_DELETES)
def test_postgresql_refuses_a_raw_delete_of_an_event(event):
    before = snapshot(event)

    with pytest.raises(IntegrityError, match="audit_event is append-only: DELETE refused"):
        raw(f"DELETE FROM {EVENT_TABLE} WHERE id = %s", [event.pk])

    event.refresh_from_db()
    assert snapshot(event) == before
    assert AuditEvent.objects.count() == 1


@pytest.mark.postgresql(PRUNE_SETTING_ONLY)
def test_postgresql_refuses_a_delete_when_the_prune_setting_is_not_on(event):
    with as_owner(), pytest.raises(IntegrityError, match="DELETE refused"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, 'off', true)", [PRUNE_SETTING])
            cursor.execute(f"DELETE FROM {EVENT_TABLE} WHERE id = %s", [event.pk])

    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.postgresql(PRUNE_SETTING_ONLY)
def test_postgresql_accepts_a_delete_in_a_transaction_that_set_the_prune_setting(event):
    with as_owner(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, 'on', true)", [PRUNE_SETTING])
        cursor.execute(f"DELETE FROM {EVENT_TABLE} WHERE id = %s", [event.pk])
        deleted = cursor.rowcount

    assert deleted == 1
    assert AuditEvent.objects.count() == 0


@pytest.mark.postgresql(PRUNE_SETTING_ONLY)
def test_postgresql_refuses_an_update_even_with_the_prune_setting_on(event):
    before = snapshot(event)

    with as_owner(), pytest.raises(IntegrityError, match="UPDATE refused"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, 'on', true)", [PRUNE_SETTING])
            cursor.execute(f"UPDATE {EVENT_TABLE} SET action = 'forged' WHERE id = %s", [event.pk])

    event.refresh_from_db()
    assert snapshot(event) == before


@pytest.mark.skipif(
    connection.vendor == "postgresql",
    reason="SQLite's own trigger; PostgreSQL's is tested by the postgresql-marked tests above",
)
@pytest.mark.parametrize("assignment", ['after = \'{"price": "0.01"}\'', "sequence = 99"])
def test_sqlite_trigger_refuses_a_raw_update_of_an_event(event, assignment):
    before = snapshot(event)

    with pytest.raises(IntegrityError, match="audit_event is append-only: UPDATE refused"):
        raw(f"UPDATE {EVENT_TABLE} SET {assignment} WHERE id = %s", [event.pk])

    event.refresh_from_db()
    assert snapshot(event) == before


# --- the relay --------------------------------------------------------------------------


def test_the_relay_moves_the_outbox_in_batches_of_the_configured_size(settings):
    settings.AUDIT_RELAY_BATCH_SIZE = 3
    outbox_ids = record(7)

    relayed = [audit_relay_batch() for _ in range(4)]

    assert relayed == [3, 3, 1, 0]
    events = list(AuditEvent.objects.order_by("sequence"))
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5, 6, 7]
    assert [e.outbox_id for e in events] == outbox_ids
    assert [e.object_id for e in events] == ["1", "2", "3", "4", "5", "6", "7"]
    assert AuditOutboxEntry.objects.count() == 0


def test_audit_relay_pending_stops_after_max_batches(settings):
    settings.AUDIT_RELAY_BATCH_SIZE = 3
    outbox_ids = record(7)

    relayed = audit_relay_pending(max_batches=2)

    assert relayed == 6
    assert list(AuditOutboxEntry.objects.values_list("pk", flat=True)) == outbox_ids[6:]
    assert AuditEvent.objects.count() == 6


def test_relayed_events_form_a_hash_chain_from_the_genesis_hash(settings):
    settings.AUDIT_RELAY_BATCH_SIZE = 3
    record(7)

    assert audit_relay_pending() == 7

    events = list(AuditEvent.objects.order_by("sequence"))
    assert events[0].previous_hash == GENESIS_HASH == "0" * 64
    for previous, current in zip(events, events[1:], strict=False):
        assert current.previous_hash == previous.hash
    for event in events:
        assert len(event.hash) == 64
        assert event.hash == event_hash(event, event.previous_hash)
    assert len({event.hash for event in events}) == 7
    head = AuditChainHead.objects.get()
    assert (head.pk, head.sequence, head.hash) == (1, 7, events[-1].hash)
    assert audit_chain_break() is None


def test_an_event_carries_the_outbox_entry_it_was_relayed_from():
    record(1)
    entry = AuditOutboxEntry.objects.get()

    audit_relay_pending()

    event = AuditEvent.objects.get()
    assert (
        event.outbox_id,
        event.occurred_at,
        event.action,
        event.object_type,
        event.object_id,
        event.object_repr,
        event.before,
        event.after,
    ) == (
        entry.pk,
        entry.occurred_at,
        "product.update",
        "catalog.product",
        "1",
        "SKU-00001",
        {"price": "9.99"},
        {"price": "1.00"},
    )
    assert event.recorded_at >= event.occurred_at


def test_stock_movements_are_relayed_into_the_chain():
    store, product = StoreFactory(code="berlin-01"), ProductFactory(sku="TEE-RED-M")
    stock_receive(store=store, product=product, quantity=5)
    stock_receive(store=store, product=product, quantity=2)

    assert audit_relay_pending() == 2

    events = list(AuditEvent.objects.order_by("sequence"))
    assert [(e.sequence, e.action, e.store_id, e.object_repr) for e in events] == [
        (1, "stock.receive", store.pk, "TEE-RED-M @ berlin-01"),
        (2, "stock.receive", store.pk, "TEE-RED-M @ berlin-01"),
    ]
    assert [(e.before, e.after) for e in events] == [
        ({"on_hand": 0, "reserved": 0, "version": 0}, {"on_hand": 5, "reserved": 0, "version": 1}),
        ({"on_hand": 5, "reserved": 0, "version": 1}, {"on_hand": 7, "reserved": 0, "version": 2}),
    ]
    assert audit_chain_break() is None


def test_relaying_again_creates_no_duplicates():
    record(3)
    assert audit_relay_pending() == 3
    before = [snapshot(e) for e in AuditEvent.objects.order_by("sequence")]

    assert audit_relay_pending() == 0
    assert audit_relay_batch() == 0

    assert [snapshot(e) for e in AuditEvent.objects.order_by("sequence")] == before
    assert AuditChainHead.objects.get().sequence == 3


def test_later_entries_continue_the_chain():
    record(2)
    audit_relay_pending()
    record(2, start=3)

    assert audit_relay_pending() == 2

    events = list(AuditEvent.objects.order_by("sequence"))
    assert [(e.sequence, e.object_id) for e in events] == [(1, "1"), (2, "2"), (3, "3"), (4, "4")]
    assert events[2].previous_hash == events[1].hash
    assert audit_chain_break() is None


def test_the_database_refuses_a_second_event_for_the_same_outbox_entry(event):
    duplicate = AuditEvent(
        **{
            field.attname: getattr(event, field.attname)
            for field in AuditEvent._meta.concrete_fields
            if field.attname not in ("id", "sequence")
        },
        sequence=2,
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()

    assert list(AuditEvent.objects.values_list("sequence", flat=True)) == [1]


def test_nothing_is_relayed_while_the_outbox_is_empty():
    assert audit_relay_pending() == 0

    assert AuditEvent.objects.count() == 0


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_four_concurrent_relays_chain_200_entries_exactly_once(settings, monkeypatch):
    # The commit must not relay (eagerly, or through a worker): only the four threads do.
    monkeypatch.setattr("audit.services._send_relay", lambda: None)
    settings.AUDIT_RELAY_BATCH_SIZE = 7
    with transaction.atomic():
        outbox_ids = record(200)

    outcomes = run_together([audit_relay_pending] * 4)

    assert [o for o in outcomes if isinstance(o, Exception)] == []
    assert sum(outcomes) == 200
    events = list(AuditEvent.objects.order_by("sequence"))
    assert [e.sequence for e in events] == list(range(1, 201))
    assert sorted(e.outbox_id for e in events) == outbox_ids
    assert events[0].previous_hash == GENESIS_HASH
    assert all(b.previous_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    assert AuditOutboxEntry.objects.count() == 0
    assert AuditChainHead.objects.get().sequence == 200
    assert audit_chain_break() is None
