from django.contrib import admin
from django.urls import include, path, re_path

from stock.views import low_stock_page, store_dashboard, store_dashboard_summary

from .api.errors import unknown_api_path
from .health import healthz, readyz
from .metrics import metrics
from .views import home

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("stores/<str:code>/", store_dashboard, name="store-dashboard"),
    path("stores/<str:code>/summary/", store_dashboard_summary, name="store-dashboard-summary"),
    path("stores/<str:code>/low-stock/", low_stock_page, name="low-stock"),
    path("api/v1/", include("inventory_site.api.urls")),
    re_path(r"^api/(?P<path>.*)$", unknown_api_path),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="prometheus-django-metrics"),
]

handler400 = "inventory_site.api.errors.json_bad_request"
handler403 = "inventory_site.api.errors.json_permission_denied"
handler404 = "inventory_site.api.errors.json_not_found"
handler500 = "inventory_site.api.errors.json_server_error"
