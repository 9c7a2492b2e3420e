"""Input and output of the operators' stock commands (``stock/management/commands``).

The commands change stock only through ``stock.services``; this module finds what a
command line names, reads and checks the CSV files of ``import_stock`` and of the admin's
upload before anything is applied, applies them (``apply_stock_rows``: one bulk service
call, all rows or none), and prints the aligned text tables the commands show.
"""

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import QuerySet

from catalog.models import Product
from stores.models import Store

from .exceptions import (
    InsufficientStock,
    ProductInactive,
    Shortage,
    StockError,
    StoreInactive,
)
from .models import LOW_STOCK, StockLevel
from .services import (
    MAX_QUANTITY,
    MAX_REFERENCE_LENGTH,
    BulkItem,
    BulkResult,
    adjustment_sign_problem,
    stock_apply_bulk,
)

# A whole number as people write it in a file or on a command line: ASCII digits only,
# so that int() never accepts "1_000" or other scripts' digits.
WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+", re.ASCII)
ITERATOR_CHUNK_SIZE = 2000
# Keys per query when a file's stores, SKUs or levels are looked up.
LOOKUP_CHUNK_SIZE = 5000

# --- What a command line names --------------------------------------------------------


def store_by_code(code: str) -> Store:
    store = Store.objects.filter(code=code).first()
    if store is None:
        raise CommandError(f"No store with code {code!r}.")
    return store


def product_by_sku(sku: str) -> Product:
    """The product ``sku`` names, matched exactly as the API matches it."""
    product = Product.objects.filter(sku=sku).first()
    if product is None:
        raise CommandError(f"No product with SKU {sku!r}.")
    return product


def read_text(path: str) -> str:
    """The file's text (UTF-8, a byte order mark allowed, as spreadsheets write it)."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file.") from None
    except UnicodeDecodeError as error:
        raise CommandError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start})."
        ) from None
    except OSError as error:
        raise CommandError(f"{path}: {error.strerror}.") from None


# --- Queries the reports read ---------------------------------------------------------


def stock_levels_for_report(store: Store | None = None) -> QuerySet[StockLevel]:
    """Levels with their store and product, in store code then SKU order."""
    levels = StockLevel.objects.select_related("store", "product").order_by(
        "store__code", "product__sku"
    )
    return levels if store is None else levels.filter(store=store)


def low_stock_levels(store: Store | None = None) -> QuerySet[StockLevel]:
    """Levels whose available units are at or below their reorder point (the API's
    ``low_stock=true``), leaving out retired products, and closed stores unless one is
    asked for by name."""
    levels = stock_levels_for_report(store).filter(LOW_STOCK, product__is_active=True)
    return levels if store is not None else levels.filter(store__is_active=True)


# --- Text tables ----------------------------------------------------------------------


def text_table(headers: list[str], rows: Iterable[list], *, numeric: set[int]) -> list[str]:
    """Lines of a table whose columns are as wide as their widest cell; the columns in
    ``numeric`` are aligned right. A row may carry one more cell than there are headers
    (a marker such as LOW), printed after the last column."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, cell in enumerate(row[: len(headers)]):
            widths[index] = max(widths[index], len(cell))

    def line(row: list[str]) -> str:
        aligned = [
            cell.rjust(widths[index]) if index in numeric else cell.ljust(widths[index])
            for index, cell in enumerate(row[: len(headers)])
        ]
        return "  ".join(aligned + row[len(headers) :]).rstrip()

    return [line(headers)] + [line(row) for row in cells]


# --- CSV files of stock ---------------------------------------------------------------

SET, ADJUST = "set", "adjust"
VALUE_COLUMN = {SET: "on_hand", ADJUST: "delta"}
VERSION_COLUMN = "version"
EXPORT_COLUMNS = [
    "store", "sku", "on_hand", "reserved", "available", "reorder_point", VERSION_COLUMN,
]  # fmt: skip


class StockFileInvalid(Exception):
    """The file cannot be applied; ``problems`` are ``line N: ...`` texts, in line order."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass(frozen=True)
class StockRow:
    line: int
    store: Store
    product: Product
    value: int  # the count (set mode) or the change (adjust mode)
    # The level's version when the row was exported; None for a row without one.
    version: int | None = None


@dataclass(frozen=True)
class _RawRow:
    line: int
    store_code: str
    sku: str
    value: str
    version: str = ""


def parse_stock_csv(
    text: str, *, mode: str | None = None, store: Store | None = None
) -> tuple[str, list[StockRow]]:
    """The mode and the checked rows of a ``store,sku,on_hand`` (set) or
    ``store,sku,delta`` (adjust) file.

    Every row is checked before any is returned, so that one run names every problem:
    StockFileInvalid lists them by the file's line number (the header is line 1). An
    optional ``version`` column (``export_stock`` writes one) is the level's version the
    row was read at (``apply_stock_rows`` refuses the row if the level has changed since);
    other columns, such as ``reserved``, are ignored; blank lines are skipped.

    With ``store`` (an upload for one store), a row naming any other store is a problem
    worded the same whether that store exists or not: the file tells nobody which store
    codes are real.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise StockFileInvalid(["line 1: the file is empty; it needs a header line."])
        mode, columns = _read_header(header, mode)
        raw_rows, problems = _read_rows(reader, columns, mode)
    except csv.Error as error:
        raise StockFileInvalid([f"line {reader.line_num}: not valid CSV ({error})."]) from None
    rows, row_problems = _resolve_rows(raw_rows, mode, store)
    problems = sorted(problems + row_problems, key=lambda problem: problem[0])
    if problems:
        raise StockFileInvalid([f"line {line}: {problem}." for line, problem in problems])
    return mode, rows


def _read_header(header: list[str], mode: str | None) -> tuple[str, dict[str, int]]:
    names = [name.strip().lower() for name in header]
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        raise StockFileInvalid([f"line 1: column {repeated[0]!r} appears more than once."])
    if mode is None:
        present = [m for m in (SET, ADJUST) if VALUE_COLUMN[m] in names]
        if len(present) != 1:
            raise StockFileInvalid(
                [
                    "line 1: the header needs store, sku and either on_hand (set mode) or "
                    "delta (adjust mode)"
                    + ("; it has both, so choose one with --mode." if present else ".")
                ]
            )
        mode = present[0]
    required = ["store", "sku", VALUE_COLUMN[mode]]
    missing = [name for name in required if name not in names]
    if missing:
        raise StockFileInvalid(
            [
                f"line 1: the header has no {' or '.join(missing)} column "
                f"({mode} mode needs {','.join(required)})."
            ]
        )
    optional = [VERSION_COLUMN] if VERSION_COLUMN in names else []
    return mode, {name: names.index(name) for name in required + optional}


def _read_rows(
    reader, columns: dict[str, int], mode: str
) -> tuple[list[_RawRow], list[tuple[int, str]]]:
    value_column = VALUE_COLUMN[mode]
    rows, problems = [], []
    for fields in reader:
        line = reader.line_num
        if not any(field.strip() for field in fields):
            continue
        values = {
            name: fields[index].strip() if index < len(fields) else ""
            for name, index in columns.items()
        }
        missing = [name for name in ("store", "sku", value_column) if not values[name]]
        if missing:
            problems.append((line, f"no {' or '.join(missing)}"))
            continue
        if any("\x00" in value for value in values.values()):
            problems.append((line, "a null character"))  # no database can look it up
            continue
        rows.append(
            _RawRow(
                line,
                values["store"],
                values["sku"],
                values[value_column],
                values.get(VERSION_COLUMN, ""),
            )
        )
    return rows, problems


def _resolve_rows(
    raw_rows: list[_RawRow], mode: str, only_store: Store | None = None
) -> tuple[list[StockRow], list[tuple[int, str]]]:
    """Find every row's store and product (a query for the stores and one per
    ``LOOKUP_CHUNK_SIZE`` SKUs, however many rows) and check its number. A store and SKU
    on two lines is a problem: the second line would silently override (set) or
    compound (adjust) the first."""
    if only_store is not None:
        stores = {only_store.code: only_store}
    else:
        stores = _by_key(Store.objects.all(), "code", {row.store_code for row in raw_rows})
    products = _by_key(
        Product.objects.only("id", "sku", "is_active"), "sku", {row.sku for row in raw_rows}
    )
    rows, problems, first_line = [], [], {}
    for raw in raw_rows:
        found = []
        store, product = stores.get(raw.store_code), products.get(raw.sku)
        if store is None and only_store is not None:
            found.append(f"the store is {raw.store_code}, but this upload is for {only_store.code}")
        elif store is None:
            found.append(f"unknown store {raw.store_code!r}")
        if product is None:
            found.append(f"unknown SKU {raw.sku!r}")
        value, value_problem = _whole_number(raw.value, mode)
        if value_problem:
            found.append(value_problem)
        version = None
        if raw.version:
            if raw.version.isascii() and raw.version.isdigit():
                version = int(raw.version)
            else:
                found.append(f"version {raw.version!r} is not a whole number")
        key = (raw.store_code, raw.sku)
        if key in first_line:
            found.append(f"{raw.store_code} {raw.sku} is already on line {first_line[key]}")
        else:
            first_line[key] = raw.line
        if found:
            problems.extend((raw.line, problem) for problem in found)
        else:
            rows.append(StockRow(raw.line, store, product, value, version))
    return rows, problems


def _whole_number(text: str, mode: str) -> tuple[int | None, str | None]:
    column = VALUE_COLUMN[mode]
    if not WHOLE_NUMBER.fullmatch(text):
        return None, f"{column} {text!r} is not a whole number"
    value = int(text)
    if mode == SET and value < 0:
        return None, f"on_hand {value} is negative"
    if mode == ADJUST and value == 0:
        return None, "delta 0 changes nothing"
    if abs(value) > MAX_QUANTITY:
        return None, f"{column} {value} is beyond {MAX_QUANTITY:,}"
    return value, None


def _by_key(queryset: QuerySet, field: str, keys: set[str]) -> dict:
    """The rows of ``queryset`` whose unique ``field`` is one of ``keys``, by that key:
    one query per ``LOOKUP_CHUNK_SIZE`` keys, so that a file of 100,000 SKUs takes a few
    queries and none of them an unbounded list."""
    keys, found = sorted(keys), {}
    for start in range(0, len(keys), LOOKUP_CHUNK_SIZE):
        found |= queryset.in_bulk(keys[start : start + LOOKUP_CHUNK_SIZE], field_name=field)
    return found


class StockImportRefused(Exception):
    """Rows the services refused; raised inside the transaction to roll back all.

    ``problems`` are ``line N: ...`` texts; ``stale`` counts the rows refused because their
    level changed since the file was exported.
    """

    def __init__(self, problems: list[str], *, stale: int = 0):
        super().__init__(f"{len(problems)} row(s) refused")
        self.problems = problems
        self.stale = stale


@transaction.atomic
def apply_stock_rows(
    mode: str,
    rows: list[StockRow],
    *,
    reason: str,
    source: str,
    force: bool = False,
    actor=None,
    note: str = "",
) -> tuple[int, int]:
    """Apply checked rows in one transaction, all or none; returns (applied, unchanged).

    The rows become the items of ONE ``stock_apply_bulk`` (set-based, a statement per
    thousand rows on PostgreSQL), which locks their levels in primary-key order and
    applies them all or none. What that service leaves to its callers is checked here,
    by line, before it runs: a store or product that is deactivated, an adjustment whose
    sign does not fit ``reason``. Every refused row is reported at once (no two rows
    name the same level), and StockImportRefused rolls them all back.

    A row with a version was read at that version of its level: if the level has changed
    since, applying the row would silently undo the sales, receipts and counts made in
    between, so it is refused unless ``force`` (the item's ``expected_version``). A count
    that already matches is skipped whatever its version, as it would change nothing
    (the service judges that first, under its lock). The movements carry ``source`` as
    their reference (``import_stock stock.csv``), followed by the operator's ``note``
    when there is one (the admin's upload form asks for it).
    """
    reference = _reference(source, note)
    refused, unchanged = _refused_before_applying(mode, rows, reason)
    items = [
        BulkItem(
            index=row.line,
            store_id=row.store.pk,
            product_id=row.product.pk,
            sku=row.product.sku,
            value=row.value,
            expected_version=None if force else row.version,
        )
        for row in rows
        if row.line not in refused and row.line not in unchanged
    ]
    result = _apply_bulk(mode, items, reason, reference, actor)
    if refused or result.errors:
        raise _refusal(mode, {row.line: row for row in rows}, refused, result.errors)
    return result.applied, result.unchanged + len(unchanged)


def _reference(source: str, note: str) -> str:
    """The movements' reference: where the rows came from, then the operator's note.
    A note that does not fit is refused rather than cut; a file name that does not is
    cut (it only says where the rows came from)."""
    source = source[:MAX_REFERENCE_LENGTH]
    if not note:
        return source
    room = MAX_REFERENCE_LENGTH - len(source) - 2
    if len(note) > room:
        raise StockImportRefused(
            [
                f"The note is kept on every movement's reference after the file's name: "
                f"it may have {max(room, 0):,} characters here, not {len(note):,}."
            ]
        )
    return f"{source}: {note}"


def _refused_before_applying(
    mode: str, rows: list[StockRow], reason: str
) -> tuple[dict[int, str], set[int]]:
    """Rows refused before the bulk service runs (line -> problem) and the lines left
    as they are: a deactivated store's or product's stock cannot change, but a count
    that matches it changes nothing and is skipped, as it always was."""
    refused, unchanged = {}, set()
    held = [row for row in rows if not (row.store.is_active and row.product.is_active)]
    current = _current_levels(held) if mode == SET else {}
    for row in held:
        level = current.get((row.store.pk, row.product.pk))
        if mode == SET and (level.on_hand if level else 0) == row.value:
            unchanged.add(row.line)
        elif not row.store.is_active:
            refused[row.line] = StoreInactive(row.store.code).detail
        else:
            refused[row.line] = ProductInactive(row.product.sku).detail
    if mode == ADJUST:
        for row in rows:
            problem = adjustment_sign_problem(row.value, reason)
            if problem and row.line not in refused:
                refused[row.line] = problem
    return refused, unchanged


def _apply_bulk(mode, items, reason, reference, actor) -> BulkResult:
    """The service's result; what it refuses as a whole (a store deactivated since the
    rows were read) refuses the file."""
    if not items:
        return BulkResult()
    try:
        return stock_apply_bulk(
            mode=mode,
            items=items,
            reason=reason,
            reference=reference,
            record_unchanged=False,
            actor=actor,
        )
    except StockError as error:
        raise StockImportRefused([error.detail]) from None


def _current_levels(rows: Iterable[StockRow]) -> dict[tuple[int, int], StockLevel]:
    """The levels of ``rows`` as they are now, by (store id, product id), read without a
    lock: a query per store and ``LOOKUP_CHUNK_SIZE`` products. For what the refused
    rows' problems name."""
    by_store: dict[int, list[int]] = {}
    for row in rows:
        by_store.setdefault(row.store.pk, []).append(row.product.pk)
    levels = {}
    for store_id, product_ids in by_store.items():
        for start in range(0, len(product_ids), LOOKUP_CHUNK_SIZE):
            for level in StockLevel.objects.filter(
                store_id=store_id, product_id__in=product_ids[start : start + LOOKUP_CHUNK_SIZE]
            ).only("store_id", "product_id", "on_hand", "reserved", "version"):
                levels[(level.store_id, level.product_id)] = level
    return levels


def _refusal(
    mode: str, rows_by_line: dict[int, StockRow], refused: dict[int, str], errors: list[dict]
) -> StockImportRefused:
    """Every refused row as ``line N: problem``, in line order, worded as the single-row
    services word it: a stale row names its version in the file and its version now, a
    shortage what was requested and what is available (read again, after the rollback)."""
    failed = [rows_by_line[error["index"]] for error in errors]
    current = _current_levels(failed)
    stale = 0
    for row, error in zip(failed, errors, strict=True):
        level = current.get((row.store.pk, row.product.pk))
        on_hand, reserved, version = (
            (level.on_hand, level.reserved, level.version) if level else (0, 0, 0)
        )
        if error["code"] == "version_mismatch":
            stale += 1
            refused[row.line] = (
                f"{row.store.code} {row.product.sku} has changed since the file was "
                f"exported (version {row.version} in the file, {version} now)."
            )
        elif error["code"] == "insufficient_stock":
            requested = on_hand - row.value if mode == SET else -row.value
            refused[row.line] = InsufficientStock(
                [Shortage(row.product.sku, requested, on_hand - reserved)]
            ).detail
        else:
            refused[row.line] = error["detail"]
    return StockImportRefused(
        [f"line {line}: {problem}" for line, problem in sorted(refused.items())], stale=stale
    )


def write_stock_csv(out, levels: Iterable[StockLevel]) -> int:
    """Write ``levels`` as ``store,sku,on_hand,reserved,available,reorder_point,version``
    lines (with that header) to ``out``; returns how many. The version lets an import of
    the edited file refuse rows whose level has changed since."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for level in levels:
        writer.writerow(
            [
                level.store.code,
                level.product.sku,
                level.on_hand,
                level.reserved,
                level.available,
                level.reorder_point,
                level.version,
            ]
        )
        count += 1
    return count
