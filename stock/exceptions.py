"""Domain errors of the stock services.

Each carries a stable ``code``; the API's exception handler maps the class to a status
(InvalidStockOperation 400; InsufficientStock, ReservationNotActive, ProductInactive and
StoreInactive 409; VersionMismatch 412).
"""

from dataclasses import dataclass


class StockError(Exception):
    code = "stock_error"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class InvalidStockOperation(StockError):
    """The request itself is wrong (a zero quantity, an unknown reason, ...)."""

    code = "invalid"


@dataclass(frozen=True)
class Shortage:
    sku: str
    requested: int
    available: int


class InsufficientStock(StockError):
    """The change would take a level below zero available; nothing was changed."""

    code = "insufficient_stock"

    def __init__(self, shortages: list[Shortage]):
        self.shortages = shortages
        described = ", ".join(
            f"{s.sku}: {s.requested} requested, {s.available} available" for s in shortages
        )
        super().__init__(f"Not enough stock ({described}).")


class VersionMismatch(StockError):
    """A compare-and-set saw another version than the caller expected."""

    code = "version_mismatch"

    def __init__(self, *, expected: int, current: int):
        self.expected = expected
        self.current = current
        super().__init__(f"The stock level is at version {current}, not {expected}; read it again.")


class ReservationNotActive(StockError):
    """Commit or release of a reservation that is committed, released or expired."""

    code = "reservation_not_active"

    def __init__(self, status: str):
        self.status = status
        super().__init__(f"The reservation is {status}, not active.")


class ProductInactive(StockError):
    """A stock change of a deactivated product (reads and giving back holds still work)."""

    code = "product_inactive"

    def __init__(self, sku: str):
        self.sku = sku
        super().__init__(f"Product {sku} is deactivated; its stock cannot change.")


class StoreInactive(StockError):
    """A stock change in a deactivated store (reads and giving back holds still work)."""

    code = "store_inactive"

    def __init__(self, code: str):
        self.store_code = code
        super().__init__(f"Store {code} is deactivated; its stock cannot change.")


class BulkRejected(InvalidStockOperation):
    """Bulk items that fail before any lock is taken; nothing was queued or applied.
    ``errors`` lists each as ``{"index", "sku", "detail", "code"}``."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__(f"{len(errors)} of the items cannot be applied; nothing was queued.")
