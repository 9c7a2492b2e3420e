"""Every change to stock goes through this package.

Each service is one transaction that changes one or more stock levels and writes exactly
one Movement per change, and with it one StockEvent numbered in its store's event log;
after commit it sends ``stock_changed`` and ``stock_events_committed``. One module per
concern:

- ``levels``: receive, adjust, set a count, purchase, reorder points;
- ``reservations``: checkout holds and their expiry;
- ``transfers``: units moved between stores;
- ``bulk``: jobs of many set or adjust items, applied by a worker;
- ``seed``: stocking many stores with many products at once;
- ``rules``: the checks every service makes before it touches a row;
- ``locks``: the one primary-key-ordered round of row locks;
- ``sql``: the guarded statements that change levels and write their movements (``seed``
  and ``locks`` add new levels);
- ``event_log``: the stock events of those movements, numbered per store after every
  level lock.

Callers import from ``stock.services``; the modules are its inside.
"""

from .bulk import (
    MAX_BULK_ITEMS,
    BulkItem,
    BulkRejected,
    BulkResult,
    bulk_check,
    bulk_job_run,
    bulk_job_submit,
    bulk_jobs_resume,
    stock_apply_bulk,
)
from .levels import (
    stock_adjust,
    stock_purchase,
    stock_receive,
    stock_set_count,
    stock_set_reorder_point,
    stock_set_reorder_points,
)
from .reservations import (
    MAX_RESERVATION_TTL_SECONDS,
    reservation_commit,
    reservation_create,
    reservation_release,
    reservations_expire_all_due,
    reservations_expire_due,
)
from .rules import (
    ADJUSTMENT_DIRECTION,
    MAX_QUANTITY,
    MAX_REFERENCE_LENGTH,
    StockLine,
    adjustment_sign_problem,
    merge_lines,
    refuse_inactive,
)
from .seed import SEED_ON_HAND_SPREAD, stock_seed_levels
from .transfers import Transfer, stock_transfer

__all__ = [
    "MAX_BULK_ITEMS",
    "BulkItem",
    "BulkRejected",
    "BulkResult",
    "bulk_check",
    "bulk_job_run",
    "bulk_job_submit",
    "bulk_jobs_resume",
    "stock_apply_bulk",
    "ADJUSTMENT_DIRECTION",
    "MAX_QUANTITY",
    "MAX_REFERENCE_LENGTH",
    "MAX_RESERVATION_TTL_SECONDS",
    "SEED_ON_HAND_SPREAD",
    "StockLine",
    "Transfer",
    "adjustment_sign_problem",
    "merge_lines",
    "refuse_inactive",
    "reservation_commit",
    "reservation_create",
    "reservation_release",
    "reservations_expire_all_due",
    "reservations_expire_due",
    "stock_adjust",
    "stock_purchase",
    "stock_receive",
    "stock_seed_levels",
    "stock_set_count",
    "stock_set_reorder_point",
    "stock_set_reorder_points",
    "stock_transfer",
]
