from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from stock.models import Movement, StockLevel
from stock.services import (
    StockLine,
    stock_purchase,
    stock_receive,
    stock_set_reorder_point,
    stock_transfer,
)
from tests.factories import ProductFactory

from .helpers import insert_receive_movement_with_raw_sql


@pytest.fixture
def trading(store, other_store, product, other_product):
    """A little history in two stores."""
    stock_receive(store=store, product=product, quantity=10)
    stock_receive(store=store, product=other_product, quantity=3)
    stock_purchase(store=store, product=product, quantity=4)
    stock_transfer(from_store=store, to_store=other_store, lines=[StockLine(product, 2)])


def raw(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_a_consistent_ledger_passes(trading, capsys):
    call_command("verify_ledger")

    assert capsys.readouterr().out == "Ledger consistent: 3 stock levels checked.\n"


@pytest.mark.parametrize(
    "corruption, expected",
    [
        (
            "on_hand = on_hand + 5",
            [
                "stock level says on_hand=9 reserved=0 version=3, "
                "ledger says on_hand=4 reserved=0 changes=3"
            ],
        ),
        (
            "version = version + 1",
            [
                "stock level says on_hand=4 reserved=0 version=4, "
                "ledger says on_hand=4 reserved=0 changes=3"
            ],
        ),
        (
            "reserved = 1",
            [
                "stock level says on_hand=4 reserved=1 version=3, "
                "ledger says on_hand=4 reserved=0 changes=3",
                "reserved=1 but active reservations hold 0",
            ],
        ),
    ],
)
def test_a_level_changed_behind_the_ledger_is_named(
    trading, store, product, corruption, expected, capsys
):
    raw(
        f"UPDATE {StockLevel._meta.db_table} SET {corruption} "
        "WHERE store_id = %s AND product_id = %s",
        [store.pk, product.pk],
    )

    with pytest.raises(CommandError) as failed:
        call_command("verify_ledger")

    assert str(failed.value) == f"Ledger drift: {len(expected)} problem(s) found."
    assert failed.value.returncode == 1
    assert capsys.readouterr().err.splitlines() == [
        f"berlin-01/TEE-RED-M: {problem}" for problem in expected
    ]


def test_movements_without_a_level_are_named(trading, other_store, other_product, capsys):
    movement = Movement.objects.filter(store=other_store).get()
    insert_receive_movement_with_raw_sql(
        store_id=other_store.pk,
        product_id=other_product.pk,
        quantity=1,
        version_after=1,
        at=movement.created_at,
    )

    with pytest.raises(CommandError):
        call_command("verify_ledger")

    assert capsys.readouterr().err == (
        "hamburg-01/MUG-BLUE: movements exist but the stock level does not\n"
    )


def test_a_level_never_moved_is_consistent(trading, store, capsys):
    """A reorder point set before any stock came: a level at version 0, no movements."""
    stock_set_reorder_point(store=store, product=ProductFactory(sku="NEW"), reorder_point=5)

    call_command("verify_ledger")

    assert capsys.readouterr().out == "Ledger consistent: 4 stock levels checked.\n"


def test_a_level_holding_what_no_movement_gave_is_named(store, capsys):
    """A level without movements that claims stock: its ledger sums to nothing."""
    product = ProductFactory(sku="GHOST")
    stock_set_reorder_point(store=store, product=product, reorder_point=5)
    raw(
        f"UPDATE {StockLevel._meta.db_table} SET on_hand = 3 WHERE product_id = %s",
        [product.pk],
    )

    with pytest.raises(CommandError):
        call_command("verify_ledger")

    assert capsys.readouterr().err == (
        "berlin-01/GHOST: stock level says on_hand=3 reserved=0 version=0, "
        "ledger says on_hand=0 reserved=0 changes=0\n"
    )


@pytest.mark.parametrize("levels", [1, 40])
def test_every_level_is_checked_in_one_statement(store, django_assert_max_num_queries, levels):
    """One statement checks the ledger, the reservations and the orphans of every level
    (wrapped in a savepoint, with PostgreSQL's plan setting), one counts the levels: the
    same for 1 level and for 40."""
    for number in range(levels):
        stock_receive(store=store, product=ProductFactory(sku=f"SKU-{number}"), quantity=1)

    with django_assert_max_num_queries(5):
        call_command("verify_ledger", stdout=StringIO())
