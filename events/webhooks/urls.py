"""Routes under /api/v1/stores/<code>/webhooks/."""

from django.urls import path

from . import apis

urlpatterns = [
    path("", apis.WebhookListApi.as_view(), name="webhook-list"),
    path("<int:webhook_id>/", apis.WebhookDetailApi.as_view(), name="webhook-detail"),
    path(
        "<int:webhook_id>/rotate-secret/",
        apis.WebhookRotateSecretApi.as_view(),
        name="webhook-rotate-secret",
    ),
    path(
        "<int:webhook_id>/deliveries/",
        apis.WebhookDeliveryListApi.as_view(),
        name="webhook-delivery-list",
    ),
    path(
        "<int:webhook_id>/deliveries/<int:delivery_id>/redeliver/",
        apis.WebhookRedeliverApi.as_view(),
        name="webhook-redeliver",
    ),
]
