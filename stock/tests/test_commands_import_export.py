"""``import_stock``, ``export_stock`` and ``import_v1_json``: files checked whole before
anything is applied, then applied through the services in one transaction, all or
nothing; a failing run names every problem and changes nothing."""

import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent, AuditOutboxEntry
from catalog.models import Product
from catalog.services import product_update
from stock.models import AdjustmentReason, Movement, MovementKind, StockLevel
from stock.services import (
    StockLine,
    reservation_create,
    stock_receive,
    stock_set_count,
    stock_set_reorder_point,
)
from stores.models import Store
from stores.services import store_update
from tests.factories import ProductFactory, StoreFactory

from .helpers import assert_level_matches_ledger, level_of, movements_of


def command(name: str, *args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def command_fails(name: str, *args) -> tuple[str, list[str]]:
    """The CommandError's message and the problems written to stderr."""
    err = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command(name, *args, stdout=io.StringIO(), stderr=err)
    assert failed.value.returncode == 1
    return str(failed.value), err.getvalue().splitlines()


def audit_count() -> int:
    return AuditOutboxEntry.objects.count() + AuditEvent.objects.count()


def snapshot() -> dict:
    return {
        "stores": list(Store.objects.order_by("pk").values_list("code", "name")),
        "products": list(Product.objects.order_by("pk").values_list("sku", "name", "price")),
        "levels": list(
            StockLevel.objects.order_by("pk").values_list(
                "store_id", "product_id", "on_hand", "reserved", "reorder_point", "version"
            )
        ),
        "movements": Movement.objects.count(),
        "audit": audit_count(),
    }


def on_hand(store, *products) -> list[int]:
    return [level_of(store, product).on_hand for product in products]


@pytest.fixture
def write(tmp_path):
    def write(text: str, name: str = "stock.csv") -> str:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


@pytest.fixture
def cap(db):
    return ProductFactory(sku="CAP", name="Cap")


@pytest.fixture
def tote(db):
    return ProductFactory(sku="TOTE", name="Tote bag")


@pytest.fixture
def stocked(store, other_store, product, other_product, cap, tote):
    """berlin-01: TEE-RED-M 10, MUG-BLUE 5, CAP 8, TOTE 3; hamburg-01: MUG-BLUE 7."""
    for item, quantity in ((product, 10), (other_product, 5), (cap, 8), (tote, 3)):
        stock_receive(store=store, product=item, quantity=quantity)
    stock_receive(store=other_store, product=other_product, quantity=7)


# --- import_stock: applying -----------------------------------------------------------


def test_set_mode_records_counts_and_skips_rows_that_already_match(
    store, other_store, product, other_product, cap, stocked, write
):
    path = write(
        "store,sku,on_hand\n"
        "berlin-01,TEE-RED-M,12\n"
        "berlin-01,MUG-BLUE,5\n"
        "hamburg-01,CAP,4\n"
        "berlin-01,CAP,0\n"
    )

    out, err = command("import_stock", path)

    assert (out, err) == (f"{path}: 3 row(s) applied, 1 unchanged (set mode).\n", "")
    assert on_hand(store, product, other_product, cap) == [12, 5, 0]
    assert on_hand(other_store, cap) == [4]
    counted = movements_of(store, product)[-1]
    assert (counted.kind, counted.delta_on_hand, counted.reason, counted.reference) == (
        MovementKind.SET,
        2,
        AdjustmentReason.CORRECTION,
        "import_stock stock.csv",
    )
    assert len(movements_of(store, other_product)) == 1  # the unchanged row wrote nothing
    for level in StockLevel.objects.all():
        assert_level_matches_ledger(level.store, level.product)


def test_adjust_mode_comes_from_the_header_and_records_the_reason(
    store, other_store, product, other_product, stocked, write
):
    path = write("Store, SKU ,Delta\nberlin-01,TEE-RED-M,4\nhamburg-01,TEE-RED-M,+6\n")

    out, _ = command("import_stock", path, "--reason", "found")

    assert out == f"{path}: 2 row(s) applied (adjust mode).\n"
    assert on_hand(store, product) == [14]
    assert on_hand(other_store, product) == [6]
    assert [(m.kind, m.delta_on_hand, m.reason) for m in movements_of(other_store, product)] == [
        (MovementKind.ADJUST, 6, AdjustmentReason.FOUND)
    ]


def test_mode_chooses_the_column_when_the_header_has_both(store, product, stocked, write):
    path = write("store,sku,on_hand,delta\nberlin-01,TEE-RED-M,3,1\n")

    out, _ = command("import_stock", path, "--mode", "adjust")

    assert out == f"{path}: 1 row(s) applied (adjust mode).\n"
    assert on_hand(store, product) == [11]


def test_a_file_with_three_bad_lines_names_all_three_and_changes_nothing(stocked, write):
    path = write(
        "store,sku,on_hand\n"
        "berlin-01,TEE-RED-M,12\n"
        "paris-01,TEE-RED-M,3\n"
        "berlin-01,MUG-BLUE,many\n"
        "berlin-01,CAP,4\n"
        "berlin-01,TOTE,-1\n"
    )
    before = snapshot()

    message, problems = command_fails("import_stock", path)

    assert message == f"{path}: nothing imported; 3 problem(s) found."
    assert problems == [
        "line 3: unknown store 'paris-01'.",
        "line 4: on_hand 'many' is not a whole number.",
        "line 6: on_hand -1 is negative.",
    ]
    assert snapshot() == before


@pytest.mark.parametrize(
    "text, problems",
    [
        ("store,sku,on_hand\nberlin-01,NOPE,1\n", ["line 2: unknown SKU 'NOPE'."]),
        ("store,sku,on_hand\nberlin-01,tee-red-m,1\n", ["line 2: unknown SKU 'tee-red-m'."]),
        ("store,sku,on_hand\nberlin-01,TEE-RED-M,1.5\n",
         ["line 2: on_hand '1.5' is not a whole number."]),
        ("store,sku,on_hand\nberlin-01,TEE-RED-M,1000001\n",
         ["line 2: on_hand 1000001 is beyond 1,000,000."]),
        ("store,sku,on_hand\nberlin-01,TEE-RED-M\n", ["line 2: no on_hand."]),
        ("store,sku,on_hand\n,TEE-RED-M,\n", ["line 2: no store or on_hand."]),
        ("store,sku,on_hand\nberlin-01,CAP,1\n\nberlin-01,CAP,2\n",
         ["line 4: berlin-01 CAP is already on line 2."]),
        ("store,sku,delta\nberlin-01,CAP,0\n", ["line 2: delta 0 changes nothing."]),
        ("store,sku,delta\nberlin-01,CAP,-1000001\n",
         ["line 2: delta -1000001 is beyond 1,000,000."]),
        ("store,sku,delta\nnowhere,NOPE,x\n",
         ["line 2: unknown store 'nowhere'.", "line 2: unknown SKU 'NOPE'.",
          "line 2: delta 'x' is not a whole number."]),
        ("store,sku,count\nberlin-01,CAP,1\n",
         ["line 1: the header needs store, sku and either on_hand (set mode) or delta "
          "(adjust mode)."]),
        ("store,sku,on_hand,delta\nberlin-01,CAP,1,1\n",
         ["line 1: the header needs store, sku and either on_hand (set mode) or delta "
          "(adjust mode); it has both, so choose one with --mode."]),
        ("store,on_hand\nberlin-01,1\n",
         ["line 1: the header has no sku column (set mode needs store,sku,on_hand)."]),
        ("store,sku,sku,on_hand\nberlin-01,CAP,CAP,1\n",
         ["line 1: column 'sku' appears more than once."]),
        ("", ["line 1: the file is empty; it needs a header line."]),
        ('store,sku,on_hand\nberlin-01,"CAP,1\n',
         ["line 2: not valid CSV (unexpected end of data)."]),
        ('store,sku,on_hand\nberlin-01,CAP,1\nberlin-01,"TOTE"x,1\n',
         ["line 3: not valid CSV (',' expected after '\"')."]),
    ],
)  # fmt: skip
def test_each_kind_of_bad_line_is_named_and_nothing_changes(stocked, write, text, problems):
    path = write(text)
    before = snapshot()

    message, reported = command_fails("import_stock", path)

    assert reported == problems
    assert message == f"{path}: nothing imported; {len(problems)} problem(s) found."
    assert snapshot() == before


def test_header_and_mode_must_agree(stocked, write):
    path = write("store,sku,on_hand\nberlin-01,CAP,1\n")

    message, reported = command_fails("import_stock", path, "--mode", "adjust")

    assert reported == [
        "line 1: the header has no delta column (adjust mode needs store,sku,delta)."
    ]


@pytest.mark.django_db(transaction=True)
def test_a_row_the_service_refuses_rolls_back_the_rows_before_it(write):
    """A real transaction: rows 1 and 2 were applied when row 3 was refused."""
    store = StoreFactory(code="berlin-01")
    items = [ProductFactory(sku=sku) for sku in ("A", "B", "C", "D")]
    for item in items:
        stock_receive(store=store, product=item, quantity=5)
    path = write(
        "store,sku,delta\nberlin-01,A,-1\nberlin-01,B,+2\nberlin-01,C,-6\nberlin-01,D,-5\n"
    )
    before = snapshot()

    message, reported = command_fails("import_stock", path)

    assert reported == ["line 4: Not enough stock (C: 6 requested, 5 available)."]
    assert message == f"{path}: nothing imported; 1 problem(s) found."
    assert snapshot() == before
    assert on_hand(store, *items) == [5, 5, 5, 5]


def test_a_count_below_the_reserved_units_is_refused_with_its_line(store, product, stocked, write):
    reservation_create(store=store, lines=[StockLine(product, 4)])
    path = write("store,sku,on_hand\nberlin-01,CAP,1\nberlin-01,TEE-RED-M,3\n")
    before = snapshot()

    message, reported = command_fails("import_stock", path)

    assert reported == ["line 3: Not enough stock (TEE-RED-M: 7 requested, 6 available)."]
    assert snapshot() == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--reason", "stolen"],
         "Unknown reason 'stolen'; use one of: received, damaged, lost, found, returned, "
         "correction."),
        (["--mode", "replace"],
         "Error: argument --mode: invalid choice: 'replace' (choose from 'set', 'adjust')"),
    ],
)  # fmt: skip
def test_bad_options_are_refused(stocked, write, args, message):
    path = write("store,sku,delta\nberlin-01,CAP,1\n")
    before = snapshot()

    assert command_fails("import_stock", path, *args)[0] == message
    assert snapshot() == before


def test_a_missing_or_undecodable_file_is_refused(db, tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("store,sku,on_hand\nberlin-01,CAFÉ,1\n".encode("latin-1"))

    assert command_fails("import_stock", str(tmp_path / "none.csv"))[0] == (
        f"{tmp_path / 'none.csv'}: no such file."
    )
    assert command_fails("import_stock", str(latin))[0] == (
        f"{latin}: not UTF-8 text (invalid continuation byte at byte 31)."
    )


def test_a_byte_order_mark_is_not_part_of_the_header(store, product, stocked, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfstore,sku,on_hand\r\nberlin-01,TEE-RED-M,9\r\n")

    out, _ = command("import_stock", str(path))

    assert out == f"{path}: 1 row(s) applied, 0 unchanged (set mode).\n"
    assert on_hand(store, product) == [9]


def test_a_deactivated_store_or_product_keeps_its_count_and_refuses_a_change(
    store, other_store, product, cap, tote, stocked, write
):
    """A count that matches changes nothing and is skipped, as for any level; a count
    that does not, or any adjustment, is refused by line, and nothing is applied."""
    product_update(product=cap, is_active=False, actor=None)
    store_update(store=other_store, is_active=False, actor=None)
    counts = write(
        "store,sku,on_hand\n"
        "berlin-01,CAP,8\n"
        "hamburg-01,MUG-BLUE,7\n"
        "berlin-01,TOTE,4\n", "counts.csv"
    )  # fmt: skip
    changes = write(
        "store,sku,on_hand\n"
        "berlin-01,CAP,9\n"
        "hamburg-01,MUG-BLUE,7\n"
        "hamburg-01,TEE-RED-M,1\n"
        "berlin-01,TOTE,4\n", "changes.csv"
    )  # fmt: skip
    adjustments = write("store,sku,delta\nberlin-01,TOTE,1\nberlin-01,CAP,1\n", "found.csv")

    out, _ = command("import_stock", counts)
    before = snapshot()
    _, count_problems = command_fails("import_stock", changes)
    _, adjust_problems = command_fails("import_stock", adjustments, "--reason", "found")

    assert out == f"{counts}: 1 row(s) applied, 2 unchanged (set mode).\n"
    assert on_hand(store, tote, cap) == [4, 8]
    assert count_problems == [
        "line 2: Product CAP is deactivated; its stock cannot change.",
        "line 4: Store hamburg-01 is deactivated; its stock cannot change.",
    ]
    assert adjust_problems == ["line 3: Product CAP is deactivated; its stock cannot change."]
    assert snapshot() == before


def test_every_refused_row_is_named_and_a_stale_count_that_matches_is_not(
    store, product, other_product, cap, tote, stocked, tmp_path
):
    """Three levels changed since the export: MUG-BLUE is back at the exported count
    (skipped, as unchanged), TEE-RED-M and CAP are not (refused as stale); TOTE's new
    count is below its held units. All three problems at once, nothing applied."""
    reservation_create(store=store, lines=[StockLine(tote, 2)])
    path = tmp_path / "all.csv"
    command("export_stock", "--store", "berlin-01", str(path))
    stock_receive(store=store, product=other_product, quantity=2)
    stock_set_count(store=store, product=other_product, on_hand=5)
    stock_receive(store=store, product=product, quantity=1)
    stock_receive(store=store, product=cap, quantity=1)
    text = path.read_text()
    for old, new in (("berlin-01,TEE-RED-M,10,", "berlin-01,TEE-RED-M,12,"),
                     ("berlin-01,TOTE,3,", "berlin-01,TOTE,1,")):  # fmt: skip
        text = text.replace(old, new)
    path.write_text(text)
    before = snapshot()

    message, problems = command_fails("import_stock", str(path))

    assert problems == [
        "line 2: berlin-01 CAP has changed since the file was exported "
        "(version 1 in the file, 2 now).",
        "line 4: berlin-01 TEE-RED-M has changed since the file was exported "
        "(version 1 in the file, 2 now).",
        "line 5: Not enough stock (TOTE: 2 requested, 1 available).",
    ]
    assert message.endswith("3 problem(s) found. Export the stock again and redo the "
                            "changes, or use --force to overwrite what changed since.")  # fmt: skip
    assert snapshot() == before


def test_the_import_is_audited_as_coming_from_the_command(stocked, write):
    path = write("store,sku,delta\nberlin-01,CAP,1\n")

    command("import_stock", path)

    assert list(AuditOutboxEntry.objects.order_by("-pk").values_list("action", "request_id"))[
        0
    ] == ("stock.adjust", "command:import_stock")


# --- export_stock ---------------------------------------------------------------------


def test_export_writes_every_level_sorted_by_store_and_sku(store, product, stocked):
    reservation_create(store=store, lines=[StockLine(product, 4)])
    stock_set_reorder_point(store=store, product=product, reorder_point=2)

    out, _ = command("export_stock")

    assert out == (
        "store,sku,on_hand,reserved,available,reorder_point,version\n"
        "berlin-01,CAP,8,0,8,0,1\n"
        "berlin-01,MUG-BLUE,5,0,5,0,1\n"
        "berlin-01,TEE-RED-M,10,4,6,2,2\n"
        "berlin-01,TOTE,3,0,3,0,1\n"
        "hamburg-01,MUG-BLUE,7,0,7,0,1\n"
    )


def test_export_of_one_store_to_a_file(stocked, tmp_path):
    path = tmp_path / "hamburg.csv"

    out, _ = command("export_stock", "--store", "hamburg-01", str(path))

    assert out == f"Exported 1 stock level(s) to {path}.\n"
    assert path.read_text() == (
        "store,sku,on_hand,reserved,available,reorder_point,version\n"
        "hamburg-01,MUG-BLUE,7,0,7,0,1\n"
    )


def test_export_refuses_an_unknown_store_and_an_unwritable_file(stocked, tmp_path):
    assert command_fails("export_stock", "--store", "paris-01")[0] == (
        "No store with code 'paris-01'."
    )
    assert command_fails("export_stock", str(tmp_path / "no" / "such" / "dir.csv"))[0] == (
        f"{tmp_path / 'no' / 'such' / 'dir.csv'}: No such file or directory."
    )


def test_an_export_imported_again_changes_nothing(stocked, tmp_path):
    path = tmp_path / "all.csv"
    command("export_stock", str(path))
    before = snapshot()

    out, _ = command("import_stock", str(path))

    assert out == f"{path}: 0 row(s) applied, 5 unchanged (set mode).\n"
    assert snapshot() == before


def test_an_edited_export_applies_only_the_edited_rows(store, cap, stocked, tmp_path):
    path = tmp_path / "all.csv"
    command("export_stock", str(path))
    path.write_text(path.read_text().replace("berlin-01,CAP,8,0,8,0,1", "berlin-01,CAP,6,0,8,0,1"))
    movements = Movement.objects.count()

    out, _ = command("import_stock", str(path))

    assert out == f"{path}: 1 row(s) applied, 4 unchanged (set mode).\n"
    assert on_hand(store, cap) == [6]
    assert Movement.objects.count() == movements + 1


# --- import_v1_json -------------------------------------------------------------------

V1_INVENTORY = [
    {"id": 1, "name": "Pencil", "quantity": 40, "price": 0.5},
    {"id": 2, "name": "Notebook", "quantity": 12, "price": 3.25},
    {"id": "eraser", "name": "Eraser", "quantity": 0, "price": 1},
]


@pytest.fixture
def v1_file(tmp_path):
    def v1_file(entries, name: str = "inventory.json") -> str:
        path = tmp_path / name
        path.write_text(entries if isinstance(entries, str) else json.dumps(entries))
        return str(path)

    return v1_file


@pytest.mark.django_db
def test_v1_import_creates_the_store_products_and_counts(v1_file):
    path = v1_file(V1_INVENTORY)

    out, _ = command(
        "import_v1_json", path, "--store", "shop", "--create-store", "--store-name", "The shop"
    )

    assert out.splitlines() == [
        "Created store shop (The shop).",
        "3 item(s) into shop: 3 product(s) created, 0 existing; 3 count(s) set, 0 unchanged.",
    ]
    shop = Store.objects.get(code="shop")
    assert shop.name == "The shop"
    assert list(Product.objects.order_by("sku").values_list("sku", "name", "price")) == [
        ("V1-1", "Pencil", Decimal("0.50")),
        ("V1-2", "Notebook", Decimal("3.25")),
        ("V1-eraser", "Eraser", Decimal("1.00")),
    ]
    assert list(
        StockLevel.objects.order_by("product__sku").values_list("product__sku", "on_hand")
    ) == [("V1-1", 40), ("V1-2", 12), ("V1-eraser", 0)]
    assert set(Movement.objects.values_list("kind", "reason")) == {
        (MovementKind.SET, AdjustmentReason.CORRECTION)
    }
    assert set(AuditOutboxEntry.objects.values_list("request_id", flat=True)) == {
        "command:import_v1_json"
    }


@pytest.mark.django_db
def test_v1_import_run_twice_changes_nothing_the_second_time(v1_file):
    path = v1_file(V1_INVENTORY)
    args = ["import_v1_json", path, "--store", "shop", "--create-store", "--store-name", "Shop"]
    command(*args)
    before = snapshot()

    out, _ = command(*args)

    assert out == (
        "3 item(s) into shop: 0 product(s) created, 3 existing; 0 count(s) set, 3 unchanged.\n"
    )
    assert snapshot() == before
    assert (Movement.objects.count(), audit_count()) == (before["movements"], before["audit"])


def test_v1_import_into_an_existing_store_keeps_existing_products_as_they_are(store, v1_file):
    ProductFactory(sku="v1-2", name="Notebook A5", price=Decimal("4.00"))
    path = v1_file(V1_INVENTORY)

    out, _ = command("import_v1_json", path, "--store", "berlin-01")

    assert out.splitlines() == [
        "entry 1 (V1-2): v1-2 exists as 'Notebook A5' at 4.00; kept as it is.",
        "3 item(s) into berlin-01: 2 product(s) created, 1 existing; 3 count(s) set, 0 unchanged.",
    ]
    notebook = Product.objects.get(sku="v1-2")
    assert (notebook.name, notebook.price, level_of(store, notebook).on_hand) == (
        "Notebook A5",
        Decimal("4.00"),
        12,
    )


def test_v1_import_sets_a_changed_quantity_only(store, v1_file):
    command("import_v1_json", v1_file(V1_INVENTORY), "--store", "berlin-01")
    changed = [dict(V1_INVENTORY[0], quantity=35), *V1_INVENTORY[1:]]

    out, _ = command("import_v1_json", v1_file(changed, "later.json"), "--store", "berlin-01")

    assert out == (
        "3 item(s) into berlin-01: 0 product(s) created, 3 existing; 1 count(s) set, 2 unchanged.\n"
    )
    pencil = Product.objects.get(sku="V1-1")
    assert [(m.kind, m.delta_on_hand) for m in movements_of(store, pencil)] == [
        (MovementKind.SET, 40),
        (MovementKind.SET, -5),
    ]


def test_v1_import_names_every_bad_entry_by_index_and_changes_nothing(store, v1_file):
    path = v1_file(
        '[{"id": 1, "name": "Pencil", "quantity": 4, "price": 0.5},'
        ' {"id": 2, "name": "", "quantity": -3, "price": 1.555},'
        ' {"id": "1", "name": "Pen", "quantity": 2.0, "price": "2"},'
        " 7,"
        ' {"id": true, "price": -1},'
        ' {"id": "a b", "name": "Ruler", "quantity": 1, "price": 1e12}]'
    )
    before = snapshot()

    message, reported = command_fails("import_v1_json", path, "--store", "berlin-01")

    assert reported == [
        "entry 1 (V1-2): name must be non-empty text.",
        "entry 1 (V1-2): quantity -3 is negative.",
        "entry 1 (V1-2): price 1.555 has more than 2 decimal places.",
        "entry 2 (V1-1): quantity 2.0 is not a whole number.",
        'entry 2 (V1-1): price "2" is not a number.',
        "entry 2 (V1-1): id repeats entry 0.",
        "entry 3: expected an object, found 7.",
        "entry 4: no name, quantity.",
        "entry 4: id true is neither a whole number >= 0 nor text.",
        "entry 4: price -1 is negative.",
        'entry 5: id "a b" makes no valid SKU (V1-a b).',
        "entry 5: price 1E+12 is more than 9999999999.99.",
    ]
    assert message == f"{path}: nothing imported; 12 problem(s) found."
    assert snapshot() == before


def test_v1_import_refused_by_the_service_rolls_back_store_products_and_counts(store, v1_file):
    pencil = ProductFactory(sku="V1-1", name="Pencil", price=Decimal("0.50"))
    stock_receive(store=store, product=pencil, quantity=50)
    reservation_create(store=store, lines=[StockLine(pencil, 45)])
    before = snapshot()

    message, reported = command_fails(
        "import_v1_json", v1_file(V1_INVENTORY), "--store", "berlin-01"
    )

    assert reported == ["entry 0 (V1-1): Not enough stock (V1-1: 10 requested, 5 available)."]
    assert message.endswith(": nothing imported; 1 problem(s) found.")
    assert snapshot() == before


@pytest.mark.parametrize(
    "content, args, message",
    [
        ("[]", ["--store", "shop"],
         "No store with code 'shop'; add --create-store --store-name NAME to create it."),
        ("[]", ["--store", "shop", "--create-store"],
         "--create-store needs --store-name with 1 to 200 characters."),
        ("[]", ["--store", "Shop 1", "--create-store", "--store-name", "Shop"],
         "Cannot create store 'Shop 1': use lowercase letters, digits and single hyphens, "
         "e.g. berlin-01."),
        ("{}", ["--store", "berlin-01"], "{path}: expected a JSON array of items."),
        ("[{", ["--store", "berlin-01"],
         "{path}: not valid JSON (Expecting property name enclosed in double quotes: "
         "line 1 column 3 (char 2))."),
        ('[{"id": 1, "name": "x", "quantity": 1, "price": NaN}]', ["--store", "berlin-01"],
         "{path}: not valid JSON (NaN is not a number)."),
    ],
)  # fmt: skip
def test_v1_import_refuses_a_bad_file_or_store(store, v1_file, content, args, message):
    path = v1_file(content)
    before = snapshot()

    assert command_fails("import_v1_json", path, *args)[0] == message.format(path=path)
    assert snapshot() == before


# --- Help -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("import_stock", "[--mode {set,adjust}] [--reason REASON]"),
        ("export_stock", "[--store CODE]"),
        ("import_v1_json", "--store CODE [--create-store] [--store-name NAME]"),
    ],
)
def test_help_describes_the_command(name, expected, capsys):
    with pytest.raises(SystemExit) as exited:
        call_command(name, "--help")

    assert exited.value.code == 0
    assert expected in " ".join(capsys.readouterr().out.split())
