from django.urls import path

from . import apis

urlpatterns = [
    path("", apis.ProductListApi.as_view(), name="product-list"),
    path("<str:sku>/", apis.ProductDetailApi.as_view(), name="product-detail"),
    path(
        "<str:sku>/availability/",
        apis.ProductAvailabilityApi.as_view(),
        name="product-availability",
    ),
]
