"""``import_stock`` at volume: every row of a file goes through ONE bulk service call
(``stock_apply_bulk``, a set-based statement per thousand rows on PostgreSQL), so the
number of queries does not grow with the rows, and a 100,000-row file is applied whole,
one movement per changed level, or not at all with its problems by line.

How long it takes is measured by ``make bench-import`` (bench/import_bench.py), not here.
"""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count

from audit.models import AuditOutboxEntry
from catalog.models import Product
from stock.models import AdjustmentReason, Movement, MovementKind, StockLevel
from stock.operator_io import parse_stock_csv
from stock.services import StockLine, reservation_create, stock_seed_levels
from stores.models import Store

from .helpers import ledger_drift


def make_stores(count: int) -> list[Store]:
    return Store.objects.bulk_create(
        [Store(code=f"bulk-{number:03d}", name=f"Bulk store {number}") for number in range(count)]
    )


def make_products(count: int) -> list[Product]:
    return Product.objects.bulk_create(
        [
            Product(sku=f"BULK-{number:05d}", name=f"Bulk product {number}", price=Decimal("1"))
            for number in range(count)
        ]
    )


def on_hand_by_key() -> dict[tuple[str, str], int]:
    return {
        (code, sku): on_hand
        for code, sku, on_hand in StockLevel.objects.values_list(
            "store__code", "product__sku", "on_hand"
        )
    }


def run_import(path, *args) -> str:
    out = io.StringIO()
    call_command("import_stock", str(path), *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def write_csv(path, header: str, rows) -> None:
    path.write_text(header + "\n" + "".join(f"{','.join(map(str, row))}\n" for row in rows))


def movements_per_level(reference: str) -> dict[tuple[str, str], int]:
    return {
        (row["store__code"], row["product__sku"]): row["count"]
        for row in Movement.objects.filter(reference=reference)
        .values("store__code", "product__sku")
        .annotate(count=Count("id"))
    }


# --- Queries -------------------------------------------------------------------------


@pytest.mark.parametrize("count", [10, 1000])
def test_reading_a_file_takes_one_query_for_its_stores_and_one_for_its_skus(
    db, django_assert_num_queries, count
):
    stores, products = make_stores(2), make_products(count // 2)
    text = "store,sku,on_hand\n" + "".join(
        f"{store.code},{product.sku},1\n" for store in stores for product in products
    )

    with django_assert_num_queries(2):
        mode, rows = parse_stock_csv(text)

    assert (mode, len(rows)) == ("set", count)


@pytest.mark.postgresql("the set-based statements are PostgreSQL's; SQLite inserts per row")
@pytest.mark.parametrize("stores, products", [(2, 5), (20, 40)])
def test_an_import_takes_the_same_queries_for_10_and_800_rows(
    db, tmp_path, django_assert_num_queries, stores, products
):
    stores = make_stores(stores)
    stock_seed_levels(stores=stores, products=make_products(products))
    path = tmp_path / "found.csv"
    write_csv(path, "store,sku,delta", [(s.code, f"BULK-{p:05d}", 1) for s in stores
                                       for p in range(products)])  # fmt: skip

    # Reading: the stores and the SKUs (2). Applying: three nested atomic blocks, a
    # savepoint and its release each (6); the stores (1), the missing levels (1), the
    # level ids (1), the stores and products the announcement names (2), the batch's
    # one statement (1) and the one that numbers and writes the stock events (1).
    with django_assert_num_queries(15):
        out = run_import(path)

    assert out == f"{path}: {len(stores) * products} row(s) applied (adjust mode).\n"


# --- 100,000 rows on PostgreSQL ------------------------------------------------------


@pytest.fixture
def seeded_100k(db):
    """200 stores x 500 products, every level seeded with one import movement."""
    stores, products = make_stores(200), make_products(500)
    assert stock_seed_levels(stores=stores, products=products) == 100_000


@pytest.mark.at_scale
@pytest.mark.postgresql("100,000 rows in the embedded database is a test of SQLite")
def test_an_edited_export_of_100000_levels_imports_whole(seeded_100k, tmp_path):
    """Export every level, change 9 counts in 10 (the tenth row is left as it is), and
    import the file with its version column: every level ends as the file says, each
    changed level has exactly one new movement and one audit outbox entry, and the
    ledger balances."""
    exported = tmp_path / "all.csv"
    call_command("export_stock", str(exported), stdout=io.StringIO())
    lines = exported.read_text().splitlines()
    assert len(lines) == 100_001
    edited, expected, changed = [lines[0]], {}, set()
    for number, line in enumerate(lines[1:]):
        code, sku, on_hand, *rest = line.split(",")
        count = int(on_hand) if number % 10 == 0 else int(on_hand) + 1 + number % 7
        edited.append(",".join([code, sku, str(count), *rest]))
        expected[(code, sku)] = count
        if count != int(on_hand):
            changed.add((code, sku))
    path = tmp_path / "counts.csv"
    path.write_text("\n".join(edited) + "\n")
    movements, audit = Movement.objects.count(), AuditOutboxEntry.objects.count()

    out = run_import(path)

    assert out == f"{path}: 90000 row(s) applied, 10000 unchanged (set mode).\n"
    assert on_hand_by_key() == expected
    assert movements_per_level("import_stock counts.csv") == dict.fromkeys(changed, 1)
    assert Movement.objects.count() == movements + 90_000
    assert set(Movement.objects.filter(reference="import_stock counts.csv")
               .values_list("kind", "reason").distinct()) == {
        (MovementKind.SET, AdjustmentReason.CORRECTION)
    }  # fmt: skip
    assert AuditOutboxEntry.objects.count() == audit + 90_000
    assert ledger_drift() == []


@pytest.mark.at_scale
@pytest.mark.postgresql("100,000 rows in the embedded database is a test of SQLite")
def test_100000_adjustments_with_one_refused_row_apply_nothing(seeded_100k, tmp_path):
    """Every row but one could be applied; the one (more than is available, its units
    held) is named by its line and the other 99,999 are not applied either."""
    held = Store.objects.get(code="bulk-150"), Product.objects.get(sku="BULK-00321")
    level = StockLevel.objects.get(store=held[0], product=held[1])
    if level.on_hand == 0:
        pytest.fail("the seed left the chosen level empty; choose another")
    reservation_create(store=held[0], lines=[StockLine(held[1], level.on_hand)])
    rows = [(f"bulk-{s:03d}", f"BULK-{p:05d}", -1 if (s, p) == (150, 321) else 1)
            for s in range(200) for p in range(500)]  # fmt: skip
    path = tmp_path / "found.csv"
    write_csv(path, "store,sku,delta", rows)
    line = 2 + 150 * 500 + 321
    before = on_hand_by_key()
    movements = Movement.objects.count()

    err = io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("import_stock", str(path), stdout=io.StringIO(), stderr=err)

    assert str(refused.value) == f"{path}: nothing imported; 1 problem(s) found."
    assert err.getvalue() == (
        f"line {line}: Not enough stock (BULK-00321: 1 requested, 0 available).\n"
    )
    assert on_hand_by_key() == before
    assert Movement.objects.count() == movements


# --- A few thousand rows, in either mode ----------------------------------------------


def test_a_few_thousand_rows_create_their_levels_then_adjust_them(db, tmp_path):
    """6 stores x 500 products from nothing: a file of counts creates every level (the
    zero counts change nothing and write no movement), then a file of adjustments moves
    each of them; the ledger balances after both."""
    stores, products = make_stores(6), make_products(500)
    keys = [(store.code, product.sku) for store in stores for product in products]
    counts = tmp_path / "counts.csv"
    write_csv(counts, "store,sku,on_hand", [(*key, n % 50) for n, key in enumerate(keys)])
    found = tmp_path / "found.csv"
    write_csv(found, "store,sku,delta", [(*key, 1 + n % 3) for n, key in enumerate(keys)])

    counted = run_import(counts)
    adjusted = run_import(found, "--reason", "found")

    assert counted == f"{counts}: 2940 row(s) applied, 60 unchanged (set mode).\n"
    assert adjusted == f"{found}: 3000 row(s) applied (adjust mode).\n"
    assert on_hand_by_key() == {key: n % 50 + 1 + n % 3 for n, key in enumerate(keys)}
    assert movements_per_level("import_stock counts.csv") == {
        key: 1 for n, key in enumerate(keys) if n % 50
    }
    assert movements_per_level("import_stock found.csv") == dict.fromkeys(keys, 1)
    assert ledger_drift() == []
