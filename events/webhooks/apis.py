"""The webhook endpoints under /api/v1/stores/<code>/webhooks/, for the store's managers
(others who see the store get 403, the rest 404)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from inventory_site.api.pagination import CursorPagination
from inventory_site.api.schema import errors
from inventory_site.api.views import ApiView, validated
from stores.access import store_for
from stores.models import Role

from .models import WebhookDelivery, WebhookSubscription
from .selectors import deliveries_of_subscription, delivery_of_store, subscriptions_of_store
from .serializers import (
    WebhookDeliverySerializer,
    WebhookSubscriptionCreateSerializer,
    WebhookSubscriptionSerializer,
    WebhookSubscriptionUpdateSerializer,
    WebhookSubscriptionWithSecretSerializer,
)
from .services import (
    delivery_redeliver,
    subscription_create,
    subscription_delete,
    subscription_rotate_secret,
    subscription_update,
)


def managed_store(request, code):
    return store_for(request.user, code, role=Role.MANAGER)


def subscription_or_404(store, webhook_id) -> WebhookSubscription:
    subscription = subscriptions_of_store(store).filter(pk=webhook_id).first()
    if subscription is None:
        raise NotFound("No such webhook in this store.")
    return subscription


class WebhookListApi(ApiView):
    serializer_class = WebhookSubscriptionSerializer
    list_from_replica = False  # a manager reads back what they just created

    def get_serializer_class(self):
        if self.request is not None and self.request.method == "POST":
            return WebhookSubscriptionCreateSerializer
        return WebhookSubscriptionSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookSubscription.objects.none()
        return subscriptions_of_store(managed_store(self.request, self.kwargs["code"]))

    @extend_schema(
        responses={200: WebhookSubscriptionSerializer(many=True), **errors(400, 403, 404)}
    )
    def get(self, request, code):
        return self.paginated_response(self.get_queryset(), WebhookSubscriptionSerializer)

    @extend_schema(
        request=WebhookSubscriptionCreateSerializer,
        responses={201: WebhookSubscriptionWithSecretSerializer, **errors(400, 403, 404)},
    )
    def post(self, request, code):
        """Subscribe a URL; the answer shows the signing secret, this once."""
        store = managed_store(request, code)
        data = validated(WebhookSubscriptionCreateSerializer, request.data)
        subscription = subscription_create(
            store=store,
            url=data["url"],
            event_types=data["events"],
            is_active=data["is_active"],
            actor=request.user,
        )
        return Response(
            WebhookSubscriptionWithSecretSerializer(subscription).data,
            status=status.HTTP_201_CREATED,
        )


class WebhookDetailApi(ApiView):
    serializer_class = WebhookSubscriptionSerializer

    def get_serializer_class(self):
        if self.request is not None and self.request.method == "PATCH":
            return WebhookSubscriptionUpdateSerializer
        return WebhookSubscriptionSerializer

    def get_object(self):
        store = managed_store(self.request, self.kwargs["code"])
        return subscription_or_404(store, self.kwargs["webhook_id"])

    @extend_schema(responses={200: WebhookSubscriptionSerializer, **errors(403, 404)})
    def get(self, request, code, webhook_id):
        return Response(WebhookSubscriptionSerializer(self.get_object()).data)

    @extend_schema(
        request=WebhookSubscriptionUpdateSerializer,
        responses={200: WebhookSubscriptionSerializer, **errors(400, 403, 404)},
    )
    def patch(self, request, code, webhook_id):
        """Change the URL, the event types, or switch it on or off (on again: the
        failure count restarts and the events meanwhile are delivered)."""
        subscription = self.get_object()
        data = validated(WebhookSubscriptionUpdateSerializer, request.data)
        if "events" in data:
            data["event_types"] = data.pop("events")
        subscription = subscription_update(subscription=subscription, actor=request.user, **data)
        return Response(WebhookSubscriptionSerializer(subscription).data)

    @extend_schema(responses={204: None, **errors(403, 404)})
    def delete(self, request, code, webhook_id):
        subscription_delete(subscription=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretApi(ApiView):
    serializer_class = WebhookSubscriptionWithSecretSerializer

    @extend_schema(
        request=None, responses={200: WebhookSubscriptionWithSecretSerializer, **errors(403, 404)}
    )
    def post(self, request, code, webhook_id):
        """A new signing secret, shown this once; the current one keeps signing too for
        WEBHOOK_ROTATION_GRACE_SECONDS (previous_secret_expires_at)."""
        subscription = subscription_or_404(managed_store(request, code), webhook_id)
        subscription = subscription_rotate_secret(subscription=subscription, actor=request.user)
        return Response(WebhookSubscriptionWithSecretSerializer(subscription).data)


class WebhookDeliveryListApi(ApiView):
    """The subscription's deliveries, newest first, each with its attempts, by cursor."""

    serializer_class = WebhookDeliverySerializer
    pagination_class = CursorPagination
    list_from_replica = False
    queryset = WebhookDelivery.objects.none()  # the schema's model; get() reads the rows

    @extend_schema(responses={200: WebhookDeliverySerializer(many=True), **errors(400, 403, 404)})
    def get(self, request, code, webhook_id):
        subscription = subscription_or_404(managed_store(request, code), webhook_id)
        return self.paginated_response(
            deliveries_of_subscription(subscription), WebhookDeliverySerializer
        )


class WebhookRedeliverApi(ApiView):
    serializer_class = WebhookDeliverySerializer

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(WebhookDeliverySerializer, "Queued to be sent again now."),
            **errors(403, 404),
        },
    )
    def post(self, request, code, webhook_id, delivery_id):
        """Send a delivery again now, with a fresh retry schedule."""
        store = managed_store(request, code)
        delivery = delivery_of_store(store, delivery_id)
        if delivery is None or delivery.subscription_id != int(webhook_id):
            raise NotFound("No such delivery of this webhook.")
        delivery = delivery_redeliver(delivery=delivery, actor=request.user)
        delivery = deliveries_of_subscription(delivery.subscription_id).get(pk=delivery.pk)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
