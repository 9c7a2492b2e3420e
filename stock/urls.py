"""Routes under /api/v1/stores/<code>/ (``urlpatterns``) and /api/v1/jobs/
(``job_urlpatterns``)."""

from django.urls import path

from . import apis

urlpatterns = [
    path("stock/", apis.StockLevelListApi.as_view(), name="stock-level-list"),
    # Before stock/<sku>/, which would take "bulk" for a SKU.
    path("stock/bulk/", apis.BulkJobCreateApi.as_view(), name="bulk-job-create"),
    path("stock/<str:sku>/", apis.StockLevelDetailApi.as_view(), name="stock-level-detail"),
    path("stock/<str:sku>/receive/", apis.StockReceiveApi.as_view(), name="stock-receive"),
    path("stock/<str:sku>/adjust/", apis.StockAdjustApi.as_view(), name="stock-adjust"),
    path("stock/<str:sku>/set/", apis.StockSetCountApi.as_view(), name="stock-set"),
    path("stock/<str:sku>/purchase/", apis.StockPurchaseApi.as_view(), name="stock-purchase"),
    path("stock/<str:sku>/gate/", apis.FlashSaleGateApi.as_view(), name="stock-flash-gate"),
    path("transfers/", apis.TransferCreateApi.as_view(), name="transfer-create"),
    path("reservations/", apis.ReservationListApi.as_view(), name="reservation-list"),
    path(
        "reservations/<uuid:reservation_id>/",
        apis.ReservationDetailApi.as_view(),
        name="reservation-detail",
    ),
    path(
        "reservations/<uuid:reservation_id>/commit/",
        apis.ReservationCommitApi.as_view(),
        name="reservation-commit",
    ),
    path(
        "reservations/<uuid:reservation_id>/release/",
        apis.ReservationReleaseApi.as_view(),
        name="reservation-release",
    ),
    path("movements/", apis.MovementListApi.as_view(), name="movement-list"),
]

job_urlpatterns = [
    path("<uuid:job_id>/", apis.BulkJobDetailApi.as_view(), name="bulk-job-detail"),
]
