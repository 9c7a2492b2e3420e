"""The stock endpoints under /api/v1/stores/<code>/ and /api/v1/jobs/ (``stock.urls``),
one module per resource; every view is importable from here."""

from .bulk import BulkBodyParser, BulkJobCreateApi, BulkJobDetailApi
from .flash_gate import FlashSaleGateApi
from .levels import (
    StockAdjustApi,
    StockLevelDetailApi,
    StockLevelListApi,
    StockOperationApi,
    StockPurchaseApi,
    StockReceiveApi,
    StockSetCountApi,
    expected_version,
    names_version,
    stock_level_response,
)
from .movements import MovementListApi
from .reservations import (
    ReservationActionApi,
    ReservationCommitApi,
    ReservationDetailApi,
    ReservationListApi,
    ReservationReleaseApi,
    reservation_or_404,
)
from .transfers import TransferCreateApi

__all__ = [
    "BulkBodyParser",
    "BulkJobCreateApi",
    "BulkJobDetailApi",
    "FlashSaleGateApi",
    "MovementListApi",
    "ReservationActionApi",
    "ReservationCommitApi",
    "ReservationDetailApi",
    "ReservationListApi",
    "ReservationReleaseApi",
    "StockAdjustApi",
    "StockLevelDetailApi",
    "StockLevelListApi",
    "StockOperationApi",
    "StockPurchaseApi",
    "StockReceiveApi",
    "StockSetCountApi",
    "TransferCreateApi",
    "expected_version",
    "names_version",
    "reservation_or_404",
    "stock_level_response",
]
