"""``manage.py stock``: the single-store tracker's operations as subcommands, each one a
call of the catalog or stock services (actor None), refusing bad input with a clear
message and changing nothing then."""

import io
import sys
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent, AuditOutboxEntry
from catalog.models import Product
from stock.models import Movement, MovementKind, StockLevel
from stock.services import (
    StockLine,
    reservation_create,
    stock_receive,
    stock_set_reorder_point,
)
from stores.models import Store
from tests.factories import ProductFactory
from tests.processes import project_env, run

from .helpers import assert_level_matches_ledger, level_of, movements_of


def stock(*args) -> str:
    out = io.StringIO()
    call_command("stock", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def stock_fails(*args) -> str:
    with pytest.raises(CommandError) as failed:
        call_command("stock", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert failed.value.returncode == 1
    return str(failed.value)


def audit_rows() -> list[tuple]:
    fields = ("action", "object_repr", "actor_id", "request_id")
    return list(AuditOutboxEntry.objects.order_by("pk").values_list(*fields)) + list(
        AuditEvent.objects.order_by("sequence").values_list(*fields)
    )


def snapshot() -> dict:
    """Everything a command could change."""
    return {
        "stores": list(Store.objects.order_by("pk").values_list("code", "name", "is_active")),
        "products": list(
            Product.objects.order_by("pk").values_list("sku", "name", "price", "is_active")
        ),
        "levels": list(
            StockLevel.objects.order_by("pk").values_list(
                "store_id", "product_id", "on_hand", "reserved", "reorder_point", "version"
            )
        ),
        "movements": Movement.objects.count(),
        "audit": audit_rows(),
    }


@pytest.fixture
def stocked(store, product):
    """10 units of TEE-RED-M in berlin-01."""
    stock_receive(store=store, product=product, quantity=10)


# --- add-product ----------------------------------------------------------------------


@pytest.mark.django_db
def test_add_product_creates_it_through_the_catalog_service():
    output = stock(
        "add-product", "--sku", "MUG-BLUE", "--name", "Mug", "--price", "9.9",
        "--description", "Blue, 300 ml",
    )  # fmt: skip

    assert output == "Added MUG-BLUE 'Mug' at 9.90.\n"
    assert list(
        Product.objects.values_list("sku", "name", "description", "price", "is_active")
    ) == [("MUG-BLUE", "Mug", "Blue, 300 ml", Decimal("9.90"), True)]
    assert audit_rows() == [
        ("product.create", "MUG-BLUE", None, "command:stock add-product"),
    ]


@pytest.mark.parametrize("sku", ["TEE-RED-M", "tee-red-m", "Tee-Red-M"])
def test_add_product_refuses_a_sku_that_exists_in_any_case(product, sku):
    before = snapshot()

    message = stock_fails("add-product", "--sku", sku, "--name", "Other", "--price", "1")

    assert message == "A product with SKU TEE-RED-M already exists."
    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--sku", "bad sku", "--name", "Mug", "--price", "1"],
            "--sku: Use letters, digits, '.', '_' and '-', starting with a letter or digit "
            "('bulk' is reserved).",
        ),
        (["--sku", "MUG", "--name", "", "--price", "1"], "--name: This field may not be blank."),
        (
            ["--sku", "MUG", "--name", "Mug", "--price", "9.999"],
            "--price: Ensure that there are no more than 2 decimal places.",
        ),
        (
            ["--sku", "MUG", "--name", "Mug", "--price", "-1"],
            "--price: Ensure this value is greater than or equal to 0.",
        ),
        (
            ["--sku", "MUG", "--name", "Mug", "--price", "cheap"],
            "--price: A valid number is required.",
        ),
    ],
)
def test_add_product_refuses_bad_fields_and_creates_nothing(args, message):
    assert stock_fails("add-product", *args) == message
    assert not Product.objects.exists()
    assert audit_rows() == []


# --- move -----------------------------------------------------------------------------


def test_a_positive_move_received_is_a_receive_with_its_note(store, product, stocked):
    output = stock(
        "move", "berlin-01", "TEE-RED-M", "+5", "--reason", "received", "--note", "PO 17"
    )

    assert output == ("berlin-01 TEE-RED-M: on hand 15, reserved 0, available 15, version 2.\n")
    movement = movements_of(store, product)[-1]
    assert (movement.kind, movement.delta_on_hand, movement.reason, movement.note) == (
        MovementKind.RECEIVE,
        5,
        "",
        "PO 17",
    )
    assert movement.actor_id is None
    assert_level_matches_ledger(store, product)


@pytest.mark.parametrize(
    "delta, reason, on_hand",
    [("-3", "damaged", 7), ("3", "found", 13), ("+1", "returned", 11), ("-2", "correction", 8)],
)
def test_any_other_move_is_an_adjustment_with_its_reason(
    store, product, stocked, delta, reason, on_hand
):
    output = stock("move", "berlin-01", "TEE-RED-M", delta, "--reason", reason, "--note", "shelf")

    assert output == (
        f"berlin-01 TEE-RED-M: on hand {on_hand}, reserved 0, available {on_hand}, version 2.\n"
    )
    movement = movements_of(store, product)[-1]
    assert (movement.kind, movement.delta_on_hand, movement.reason, movement.note) == (
        MovementKind.ADJUST,
        int(delta),
        reason,
        "shelf",
    )


def test_the_level_after_a_move_shows_reserved_and_available(store, product, stocked):
    reservation_create(store=store, lines=[StockLine(product, 4)])

    output = stock("move", "berlin-01", "TEE-RED-M", "-6", "--reason", "lost")

    assert output == "berlin-01 TEE-RED-M: on hand 4, reserved 4, available 0, version 3.\n"


def test_a_move_taking_more_than_is_available_is_refused_with_the_services_message(
    store, product, stocked
):
    reservation_create(store=store, lines=[StockLine(product, 4)])
    before = snapshot()

    message = stock_fails("move", "berlin-01", "TEE-RED-M", "-7", "--reason", "damaged")

    assert message == "Not enough stock (TEE-RED-M: 7 requested, 6 available)."
    assert snapshot() == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["berlin-01", "TEE-RED-M", "0", "--reason", "lost"],
         "DELTA must be a non-zero whole number such as +5 or -3, not '0'."),
        (["berlin-01", "TEE-RED-M", "+0", "--reason", "lost"],
         "DELTA must be a non-zero whole number such as +5 or -3, not '+0'."),
        (["berlin-01", "TEE-RED-M", "2.5", "--reason", "lost"],
         "DELTA must be a non-zero whole number such as +5 or -3, not '2.5'."),
        (["berlin-01", "TEE-RED-M", "five", "--reason", "lost"],
         "DELTA must be a non-zero whole number such as +5 or -3, not 'five'."),
        (["berlin-01", "TEE-RED-M", "-1", "--reason", "stolen"],
         "Unknown reason 'stolen'; use one of: received, damaged, lost, found, returned, "
         "correction."),
        (["paris-01", "TEE-RED-M", "-1", "--reason", "lost"], "No store with code 'paris-01'."),
        (["berlin-01", "NOPE", "-1", "--reason", "lost"], "No product with SKU 'NOPE'."),
        (["berlin-01", "tee-red-m", "-1", "--reason", "lost"], "No product with SKU 'tee-red-m'."),
        (["berlin-01", "TEE-RED-M", "+2000000", "--reason", "received"],
         "quantity must be a whole number from 1 to 1,000,000."),
        (["berlin-01", "TEE-RED-M", "-2000000", "--reason", "lost"],
         "delta must be a non-zero whole number from -1,000,000 to 1,000,000."),
        (["berlin-01", "TEE-RED-M", "1", "--reason", "found", "--note", "x" * 1001],
         "--note is longer than 1000 characters."),
    ],
)  # fmt: skip
def test_a_bad_move_is_refused_and_changes_nothing(store, product, stocked, args, message):
    before = snapshot()

    assert stock_fails("move", *args) == message
    assert snapshot() == before


def test_a_move_without_a_reason_is_refused_by_the_parser(store, product, stocked):
    before = snapshot()

    message = stock_fails("move", "berlin-01", "TEE-RED-M", "-1")

    assert message == "Error: the following arguments are required: --reason"
    assert snapshot() == before


def test_moves_are_audited_as_coming_from_the_command(store, product):
    stock("move", "berlin-01", "TEE-RED-M", "+3", "--reason", "received")

    assert audit_rows() == [("stock.receive", "TEE-RED-M @ berlin-01", None, "command:stock move")]


# --- remove-product -------------------------------------------------------------------


def test_remove_product_deactivates_and_keeps_the_product_and_its_stock(store, product, stocked):
    output = stock("remove-product", "TEE-RED-M")

    assert output == "TEE-RED-M is now inactive; its stock history is kept.\n"
    product.refresh_from_db()
    assert product.is_active is False
    assert (level_of(store, product).on_hand, len(movements_of(store, product))) == (10, 1)
    assert audit_rows()[-1] == (
        "product.update",
        "TEE-RED-M",
        None,
        "command:stock remove-product",
    )


def test_removing_an_inactive_product_says_so_and_changes_nothing(product):
    stock("remove-product", "TEE-RED-M")
    before = snapshot()

    output = stock("remove-product", "TEE-RED-M")

    assert output == "TEE-RED-M is already inactive.\n"
    assert snapshot() == before


def test_removing_an_unknown_product_fails(product):
    before = snapshot()

    assert stock_fails("remove-product", "NOPE") == "No product with SKU 'NOPE'."
    assert snapshot() == before


# --- show -----------------------------------------------------------------------------


@pytest.fixture
def shelf(store, other_store, product, other_product, stocked):
    """berlin-01: TEE-RED-M 10 (4 reserved, reorder at 5), MUG-BLUE 2 (reorder at 3),
    a retired CAP 1; hamburg-01 has stock too, which berlin-01's table must not show."""
    Product.objects.filter(pk=product.pk).update(name="T-shirt")
    Product.objects.filter(pk=other_product.pk).update(name="Mug, blue")
    reservation_create(store=store, lines=[StockLine(product, 4)])
    stock_set_reorder_point(store=store, product=product, reorder_point=5)
    stock_receive(store=store, product=other_product, quantity=2)
    stock_set_reorder_point(store=store, product=other_product, reorder_point=3)
    cap = ProductFactory(sku="CAP", name="Cap")
    stock_receive(store=store, product=cap, quantity=1)
    Product.objects.filter(pk=cap.pk).update(is_active=False)  # retired with stock left
    stock_receive(store=other_store, product=other_product, quantity=50)


def test_show_prints_the_active_stock_as_an_aligned_table_marking_low_stock(shelf):
    output = stock("show", "berlin-01")

    assert output.splitlines() == [
        "sku        name       on hand  reserved  available  reorder point",
        "MUG-BLUE   Mug, blue        2         0          2              3  LOW",
        "TEE-RED-M  T-shirt         10         4          6              5",
        "(1 inactive product(s) not shown; --all lists them.)",
    ]


def test_show_all_lists_inactive_products_too(shelf):
    output = stock("show", "berlin-01", "--all")

    assert output.splitlines() == [
        "sku        name       on hand  reserved  available  reorder point",
        "CAP        Cap              1         0          1              0  inactive",
        "MUG-BLUE   Mug, blue        2         0          2              3  LOW",
        "TEE-RED-M  T-shirt         10         4          6              5",
    ]


def test_show_of_a_store_without_stock_says_so(other_store):
    assert stock("show", "hamburg-01") == "No stock in hamburg-01.\n"


def test_show_of_an_unknown_store_fails(db):
    assert stock_fails("show", "paris-01") == "No store with code 'paris-01'."


# --- Help and the real command line ---------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--help"], "{add-product,move,remove-product,show}"),
        (["add-product", "--help"], "--sku SKU --name NAME --price PRICE"),
        (["move", "--help"], "--reason REASON [--note NOTE]"),
        (["remove-product", "--help"], "usage: stock remove-product [-h] SKU"),
        (["show", "--help"], "list inactive (retired) products too"),
    ],
)
def test_help_describes_each_subcommand(args, expected, capsys):
    with pytest.raises(SystemExit) as exited:
        call_command("stock", *args)

    assert exited.value.code == 0
    assert expected in " ".join(capsys.readouterr().out.split())


def test_the_command_line_shows_help_and_exits_1_with_the_message_on_failure(tmp_path):
    env = project_env()

    helped = run([sys.executable, "manage.py", "stock", "move", "--help"], env)
    failed = run([sys.executable, "manage.py", "import_stock", str(tmp_path / "none.csv")], env)

    assert (helped.returncode, helped.stderr) == (0, "")
    assert " ".join(helped.stdout.split()).startswith(
        "usage: manage.py stock move [-h] --reason REASON [--note NOTE] STORE_CODE SKU DELTA"
    )
    assert failed.returncode == 1
    assert failed.stderr.strip().endswith(f"CommandError: {tmp_path / 'none.csv'}: no such file.")
