"""The rules every stock service checks before it touches a row: quantities, reasons,
references, active stores and products, and the sign an adjustment's reason allows."""

from collections.abc import Iterable
from dataclasses import dataclass

from catalog.models import Product
from stores.models import Store

from ..exceptions import (
    InsufficientStock,
    InvalidStockOperation,
    ProductInactive,
    Shortage,
    StoreInactive,
)
from ..models import AdjustmentReason

MAX_QUANTITY = 1_000_000
MAX_REFERENCE_LENGTH = 255


@dataclass(frozen=True)
class StockLine:
    product: Product
    quantity: int


# Which way an adjustment of each reason moves stock: goods damaged or lost leave the
# shelf; goods found, returned or received come onto it; a correction goes either way.
ADJUSTMENT_DIRECTION = {
    AdjustmentReason.DAMAGED: -1,
    AdjustmentReason.LOST: -1,
    AdjustmentReason.FOUND: 1,
    AdjustmentReason.RETURNED: 1,
    AdjustmentReason.RECEIVED: 1,
    AdjustmentReason.CORRECTION: 0,
}


def adjustment_sign_problem(delta: int, reason: str) -> str | None:
    """Why an adjustment of ``delta`` does not fit ``reason``, or None when it does.

    ``stock_adjust`` refuses such an adjustment; forms and serializers may call this too,
    to show the sentence next to the field, but the rule is this one.
    """
    direction = ADJUSTMENT_DIRECTION.get(reason, 0)
    if direction < 0 and delta > 0:
        return f"A {reason} adjustment lowers stock: delta must be negative."
    if direction > 0 and delta < 0:
        return f"A {reason} adjustment raises stock: delta must be positive."
    return None


def refuse_inactive(store: Store, products: Iterable[Product]) -> None:
    """Raise StoreInactive or ProductInactive: a deactivated store or product keeps its
    stock and history, readable, but no unit is received, sold, held or moved."""
    if not store.is_active:
        raise StoreInactive(store.code)
    for product in products:
        if not product.is_active:
            raise ProductInactive(product.sku)


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_quantity(value, *, name: str = "quantity") -> None:
    if not is_int(value) or not 1 <= value <= MAX_QUANTITY:
        raise InvalidStockOperation(f"{name} must be a whole number from 1 to 1,000,000.")


def check_reason(reason: str, *, required: bool) -> None:
    if not reason and not required:
        return
    if reason not in AdjustmentReason.values:
        raise InvalidStockOperation(f"reason must be one of: {', '.join(AdjustmentReason.values)}.")


def check_reference(reference: str) -> None:
    if len(reference) > MAX_REFERENCE_LENGTH:
        raise InvalidStockOperation("reference is longer than 255 characters.")


def refuse_shortages(store: Store, lines: list[StockLine], locked: dict) -> None:
    """Raise InsufficientStock naming every line ``store`` cannot cover from ``locked``."""
    shortages = []
    for line in lines:
        level = locked.get((store.pk, line.product.pk))
        available = level.available if level else 0
        if available < line.quantity:
            shortages.append(Shortage(line.product.sku, line.quantity, available))
    if shortages:
        raise InsufficientStock(shortages)


def user_of(actor):
    return actor if actor is not None and actor.is_authenticated else None


def merge_lines(lines: Iterable[StockLine]) -> list[StockLine]:
    """One line per product, quantities summed, each checked; in product-id order."""
    totals: dict[int, StockLine] = {}
    for line in lines:
        check_quantity(line.quantity)
        previous = totals.get(line.product.pk)
        quantity = line.quantity + (previous.quantity if previous else 0)
        totals[line.product.pk] = StockLine(line.product, quantity)
    if not totals:
        raise InvalidStockOperation("At least one line is needed.")
    merged = [totals[pk] for pk in sorted(totals)]
    for line in merged:
        check_quantity(line.quantity)
    return merged
