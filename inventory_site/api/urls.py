"""/api/v1/: the root listing every endpoint, every app's routes, token login, the OpenAPI
schema and its rendered docs."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.apis import ObtainTokenApi
from stock.urls import job_urlpatterns

from .root import ApiRootApi

urlpatterns = [
    path("", ApiRootApi.as_view(), name="api-root"),
    path("auth/token/", ObtainTokenApi.as_view(), name="auth-token"),
    path("auth/", include("accounts.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("stores/", include("stores.urls")),
    path("stores/<str:code>/", include("stock.urls")),
    path("stores/<str:code>/", include("events.stream.urls")),
    path("stores/<str:code>/webhooks/", include("events.webhooks.urls")),
    path("stores/<str:code>/", include("events.urls")),
    path("products/", include("catalog.urls")),
    path("audit/", include("audit.urls")),
    path("jobs/", include(job_urlpatterns)),
]
