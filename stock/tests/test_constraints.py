"""The database itself refuses stock rows that break an invariant (on SQLite and PostgreSQL).

These tests bypass the services with raw SQL on purpose: the constraints must hold even
for a writer that does not go through Python.
"""

import pytest
from django.db import IntegrityError, connection, transaction

from stock.models import Movement, StockLevel
from stock.services import stock_receive
from tests.app_role import as_owner

from .helpers import insert_receive_movement_with_raw_sql, level_of

LEVEL_TABLE = StockLevel._meta.db_table
MOVEMENT_TABLE = Movement._meta.db_table


def raw(sql: str, params: list):
    """As the tables' owner: the trigger holds even for the owner (the app's role may
    not even ask, tests/test_database_privileges.py)."""
    with as_owner(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def level(store, product):
    stock_receive(store=store, product=product, quantity=5)
    return level_of(store, product)


@pytest.mark.parametrize(
    "assignment",
    [
        "on_hand = -1",
        "reserved = -1",
        "reserved = on_hand + 1",
        "on_hand = 2, reserved = 3",
        "reorder_point = -1",
        "version = -1",
    ],
)
def test_a_raw_update_that_breaks_an_invariant_is_rejected(level, assignment):
    with pytest.raises(IntegrityError):
        raw(f"UPDATE {LEVEL_TABLE} SET {assignment} WHERE id = %s", [level.pk])

    level.refresh_from_db()
    assert (level.on_hand, level.reserved, level.version) == (5, 0, 1)


def test_a_raw_update_that_keeps_the_invariants_is_accepted(level):
    raw(f"UPDATE {LEVEL_TABLE} SET reserved = on_hand WHERE id = %s", [level.pk])

    level.refresh_from_db()
    assert (level.reserved, level.available) == (5, 0)


def test_a_second_level_for_the_same_store_and_product_is_rejected(level):
    with pytest.raises(IntegrityError):
        raw(
            f"INSERT INTO {LEVEL_TABLE} (store_id, product_id, on_hand, reserved, "
            "reorder_point, version, updated_at) VALUES (%s, %s, 0, 0, 0, 0, %s)",
            [level.store_id, level.product_id, level.updated_at],
        )


def test_a_second_movement_for_the_same_version_is_rejected(level):
    movement = Movement.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_receive_movement_with_raw_sql(
            store_id=movement.store_id,
            product_id=movement.product_id,
            quantity=5,
            version_after=1,
            at=movement.created_at,
        )


def test_the_ledger_refuses_an_update(level):
    with pytest.raises(IntegrityError):
        raw(f"UPDATE {MOVEMENT_TABLE} SET delta_on_hand = 500", [])

    assert Movement.objects.get().delta_on_hand == 5


@pytest.mark.postgresql(
    "SQLite keeps DELETE open because Django empties its tables with DELETE between tests"
)
def test_the_ledger_refuses_a_delete_on_postgresql(level):
    with pytest.raises(IntegrityError):
        raw(f"DELETE FROM {MOVEMENT_TABLE}", [])

    assert Movement.objects.count() == 1
