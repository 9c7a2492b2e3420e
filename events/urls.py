"""Routes under /api/v1/stores/<code>/."""

from django.urls import path

from . import apis

urlpatterns = [
    path("events/", apis.StockEventListApi.as_view(), name="stock-event-list"),
]
