"""``import_stock`` cannot silently undo newer changes: a row exported with a version is
refused when its level has changed since (the whole file, naming the line), unless
``--force``."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from stock.models import Movement, StockLevel
from stock.services import stock_purchase, stock_receive

from .helpers import level_of

HEADER = "store,sku,on_hand,reserved,available,reorder_point,version\n"
ADVICE = (
    " Export the stock again and redo the changes, or use --force to overwrite what changed since."
)


@pytest.fixture
def stocked(store, product, other_product):
    """berlin-01: TEE-RED-M 10 and MUG-BLUE 5, both at version 1."""
    stock_receive(store=store, product=product, quantity=10)
    stock_receive(store=store, product=other_product, quantity=5)


@pytest.fixture
def exported(stocked, tmp_path):
    """The export of berlin-01, as an operator would open it."""
    path = tmp_path / "berlin.csv"
    call_command("export_stock", "--store", "berlin-01", str(path), stdout=io.StringIO())
    assert path.read_text() == (
        HEADER + "berlin-01,MUG-BLUE,5,0,5,0,1\nberlin-01,TEE-RED-M,10,0,10,0,1\n"
    )
    return path


def edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def run(*args) -> str:
    out = io.StringIO()
    call_command("import_stock", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(*args) -> tuple[str, list[str]]:
    err = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("import_stock", *args, stdout=io.StringIO(), stderr=err)
    return str(failed.value), err.getvalue().splitlines()


def state() -> list[tuple]:
    levels = StockLevel.objects.order_by("pk").values_list("on_hand", "reserved", "version")
    return [*levels, Movement.objects.count()]


def test_an_edited_row_whose_level_changed_since_the_export_is_refused(store, product, exported):
    stock_purchase(store=store, product=product, quantity=3)  # a sale after the export
    edit(exported, "berlin-01,TEE-RED-M,10,0,10,0,1", "berlin-01,TEE-RED-M,12,0,10,0,1")
    before = state()

    message, problems = refused(str(exported))

    assert message == f"{exported}: nothing imported; 1 problem(s) found.{ADVICE}"
    assert problems == [
        "line 3: berlin-01 TEE-RED-M has changed since the file was exported "
        "(version 1 in the file, 2 now)."
    ]
    assert state() == before
    assert level_of(store, product).on_hand == 7  # the sale stands


def test_an_untouched_row_does_not_undo_a_sale_made_after_the_export(store, product, exported):
    """Without versions, this re-import would have put back the 3 units just sold."""
    stock_purchase(store=store, product=product, quantity=3)
    before = state()

    _, problems = refused(str(exported))

    assert problems == [
        "line 3: berlin-01 TEE-RED-M has changed since the file was exported "
        "(version 1 in the file, 2 now)."
    ]
    assert state() == before


def test_one_stale_row_refuses_the_whole_file(store, product, other_product, exported):
    stock_purchase(store=store, product=product, quantity=3)
    edit(exported, "berlin-01,MUG-BLUE,5,0,5,0,1", "berlin-01,MUG-BLUE,4,0,5,0,1")
    before = state()

    _, problems = refused(str(exported))

    assert [problem[:7] for problem in problems] == ["line 3:"]
    assert state() == before
    assert level_of(store, other_product).on_hand == 5


def test_force_applies_the_rows_over_the_newer_changes(store, product, exported):
    stock_purchase(store=store, product=product, quantity=3)
    edit(exported, "berlin-01,TEE-RED-M,10,0,10,0,1", "berlin-01,TEE-RED-M,12,0,10,0,1")

    out = run(str(exported), "--force")

    assert out == f"{exported}: 1 row(s) applied, 1 unchanged (set mode).\n"
    after = level_of(store, product)
    assert (after.on_hand, after.version) == (12, 3)


def test_rows_whose_level_is_unchanged_apply_and_matching_rows_are_skipped(
    store, product, other_product, exported
):
    # Sold and received back: the count matches the file again, at another version.
    stock_purchase(store=store, product=other_product, quantity=1)
    stock_receive(store=store, product=other_product, quantity=1)
    edit(exported, "berlin-01,TEE-RED-M,10,0,10,0,1", "berlin-01,TEE-RED-M,9,0,10,0,1")

    out = run(str(exported))

    assert out == f"{exported}: 1 row(s) applied, 1 unchanged (set mode).\n"
    assert (level_of(store, product).on_hand, level_of(store, product).version) == (9, 2)
    assert level_of(store, other_product).version == 3


def test_an_adjustment_row_with_a_version_is_checked_too(store, product, stocked, tmp_path):
    stock_purchase(store=store, product=product, quantity=3)
    path = tmp_path / "damaged.csv"
    path.write_text("store,sku,delta,version\nberlin-01,TEE-RED-M,-2,1\n")
    before = state()

    _, problems = refused(str(path), "--reason", "damaged")
    unchanged = state()
    forced = run(str(path), "--reason", "damaged", "--force")

    assert problems == [
        "line 2: berlin-01 TEE-RED-M has changed since the file was exported "
        "(version 1 in the file, 2 now)."
    ]
    assert unchanged == before
    assert forced == f"{path}: 1 row(s) applied (adjust mode).\n"
    assert level_of(store, product).on_hand == 5


def test_rows_without_a_version_are_applied_as_before(store, product, stocked, tmp_path):
    stock_purchase(store=store, product=product, quantity=3)
    path = tmp_path / "count.csv"
    path.write_text("store,sku,on_hand,version\nberlin-01,TEE-RED-M,12,\n")

    out = run(str(path))

    assert out == f"{path}: 1 row(s) applied, 0 unchanged (set mode).\n"
    assert level_of(store, product).on_hand == 12


@pytest.mark.parametrize("version", ["-1", "two", "1.0", "٣"])
def test_a_version_that_is_not_a_whole_number_is_a_line_problem(stocked, tmp_path, version):
    path = tmp_path / "count.csv"
    path.write_text(f"store,sku,on_hand,version\nberlin-01,TEE-RED-M,12,{version}\n")
    before = state()

    message, problems = refused(str(path))

    assert message == f"{path}: nothing imported; 1 problem(s) found."
    assert problems == [f"line 2: version {version!r} is not a whole number."]
    assert state() == before
