"""Reads of the webhooks, scoped to one store."""

from django.db.models import Prefetch, QuerySet

from .models import WebhookAttempt, WebhookDelivery, WebhookSubscription


def subscriptions_of_store(store) -> QuerySet[WebhookSubscription]:
    return (
        WebhookSubscription.objects.filter(store=store).select_related("created_by").order_by("pk")
    )


def deliveries_of_subscription(subscription) -> QuerySet[WebhookDelivery]:
    """Newest first, each with its attempts (one more query per page)."""
    return (
        WebhookDelivery.objects.filter(subscription=subscription)
        .prefetch_related(Prefetch("log", queryset=WebhookAttempt.objects.order_by("number")))
        .order_by("-id")
    )


def delivery_of_store(store, delivery_id) -> WebhookDelivery | None:
    return WebhookDelivery.objects.filter(store=store, pk=delivery_id).first()
