"""Only the stock/services package writes StockLevel and Movement, and the stock event
log (StockEvent, StoreEventSequence) that every movement writes with it.

A static check over the source tree: any other module that calls a write method on a
StockLevel or Movement queryset, or carries SQL that writes their tables, fails it; so
does one that adds or changes stock events or event numbers (deleting events past their
retention is the pruning's, elsewhere). Tests and migrations are exempt.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED_WRITERS = set((ROOT / "stock" / "services").glob("*.py"))
STOCK_MODELS = {"StockLevel", "Movement"}
WRITE_METHODS = {
    "create",
    "bulk_create",
    "update",
    "bulk_update",
    "get_or_create",
    "update_or_create",
    "delete",
    "save",
    "raw",
}
WRITING_SQL = re.compile(
    r"\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?stock_(stocklevel|movement)\b", re.I
)
EVENT_MODELS = {"StockEvent", "StoreEventSequence"}
EVENT_WRITE_METHODS = WRITE_METHODS - {"delete"}
WRITING_EVENT_SQL = re.compile(
    r"\b(INSERT\s+INTO|UPDATE)\s+\"?events_(stockevent|storeeventsequence)\b", re.I
)


def names_in_chain(node) -> set[str]:
    """The name a chain like ``StockLevel.objects.filter(...)`` starts from."""
    names = set()
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            break
    if isinstance(node, ast.Name):
        names.add(node.id)
    return names


def stock_writes_in(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in WRITE_METHODS
            and names_in_chain(node.func.value) & STOCK_MODELS
        ):
            found.append(f"line {node.lineno}: .{node.func.attr}() on a stock model")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in EVENT_WRITE_METHODS
            and names_in_chain(node.func.value) & EVENT_MODELS
        ):
            found.append(f"line {node.lineno}: .{node.func.attr}() on a stock event model")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if WRITING_SQL.search(node.value):
                found.append(f"line {node.lineno}: SQL writing a stock table")
            if WRITING_EVENT_SQL.search(node.value):
                found.append(f"line {node.lineno}: SQL writing the stock event log")
    return found


def project_modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0].startswith(".") or "tests" in parts or "migrations" in parts:
            continue
        if parts[0] in {"tests", "bench"} or path.name == "conftest.py":
            continue
        yield path


def test_the_check_recognises_stock_writes():
    assert stock_writes_in("StockLevel.objects.filter(pk=1).update(on_hand=3)")
    assert stock_writes_in("Movement.objects.create(kind='sale')")
    assert stock_writes_in("cursor.execute('UPDATE stock_stocklevel SET on_hand = 0')")
    assert not stock_writes_in("StockLevel.objects.filter(pk=1).count()")
    assert not stock_writes_in("Product.objects.filter(pk=1).update(name='x')")
    assert stock_writes_in("StockEvent.objects.bulk_create(events)")
    assert stock_writes_in("StoreEventSequence.objects.update(last_seq=0)")
    assert stock_writes_in("cursor.execute('INSERT INTO events_stockevent (seq) VALUES (1)')")
    assert not stock_writes_in("StockEvent.objects.filter(at__lt=cutoff).delete()")  # pruning


def test_no_module_but_the_stock_services_writes_stock():
    offenders = {
        str(path.relative_to(ROOT)): writes
        for path in project_modules()
        if path not in ALLOWED_WRITERS and (writes := stock_writes_in(path.read_text()))
    }
    assert offenders == {}
    assert ALLOWED_WRITERS <= set(project_modules())
