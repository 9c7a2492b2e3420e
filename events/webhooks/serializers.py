"""What the webhook endpoints take and answer. Serializers validate; services write."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from events.models import EventType
from inventory_site.api.fields import StrictBooleanField

from .addresses import MAX_URL_LENGTH, UrlRefused, checked_receiver
from .models import WebhookAttempt, WebhookDelivery, WebhookSubscription


class ReceiverUrlField(serializers.CharField):
    """An http(s) URL whose host resolves to public addresses only
    (``addresses.checked_receiver``)."""

    def __init__(self, **kwargs):
        super().__init__(max_length=MAX_URL_LENGTH, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        url = super().to_internal_value(data)
        try:
            checked_receiver(url)
        except UrlRefused as refusal:
            raise serializers.ValidationError(str(refusal)) from None
        return url


class EventTypesField(serializers.ListField):
    def __init__(self, **kwargs):
        super().__init__(
            child=serializers.ChoiceField(choices=EventType.values),
            allow_empty=True,
            max_length=len(EventType.values),
            help_text="Event types to deliver; empty: every type.",
            **kwargs,
        )


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    events = serializers.ListField(source="event_types", child=serializers.CharField())
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    previous_secret_expires_at = serializers.SerializerMethodField(
        help_text="While a rotated-out secret still signs: until when."
    )
    held_until = serializers.SerializerMethodField(
        help_text="While the receiver did not answer: until when nothing is sent to it "
        "(the next try of the event it missed, at most WEBHOOK_HOLD_MAX_SECONDS); the "
        "events after it wait in the log."
    )

    class Meta:
        model = WebhookSubscription
        fields = [
            "id", "url", "events", "is_active", "consecutive_failures", "disabled_at",
            "disabled_reason", "held_until", "previous_secret_expires_at", "created_by",
            "created_at", "updated_at",
        ]  # fmt: skip

        read_only_fields = fields

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_previous_secret_expires_at(self, subscription) -> str | None:
        return _while_ahead(subscription.previous_secret_expires_at)

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_held_until(self, subscription) -> str | None:
        return _while_ahead(subscription.held_until)


def _while_ahead(moment) -> str | None:
    """A time the answer shows only while it is still ahead."""
    if moment and moment > timezone.now():
        return serializers.DateTimeField().to_representation(moment)
    return None


class WebhookSubscriptionWithSecretSerializer(WebhookSubscriptionSerializer):
    """The answer that shows the signing secret: creation and rotation, once."""

    secret = serializers.CharField(read_only=True)

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookSubscriptionCreateSerializer(serializers.Serializer):
    url = ReceiverUrlField()
    events = EventTypesField(required=False, default=list)
    is_active = StrictBooleanField(required=False, default=True)


class WebhookSubscriptionUpdateSerializer(serializers.Serializer):
    url = ReceiverUrlField(required=False)
    events = EventTypesField(required=False)
    is_active = StrictBooleanField(required=False)

    def validate(self, data):
        if not data:
            raise serializers.ValidationError("Name at least one of url, events, is_active.")
        return data


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = [
            "number",
            "succeeded",
            "response_code",
            "duration_ms",
            "error",
            "at",
            "next_attempt_at",
        ]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    webhook_id = serializers.CharField(
        read_only=True, help_text="The webhook-id header: <store>:<seq>."
    )
    attempts_log = WebhookAttemptSerializer(source="log", many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "webhook_id", "seq", "event_type", "status", "attempts", "next_attempt_at",
            "last_response_code", "last_duration_ms", "last_error", "created_at", "updated_at",
            "attempts_log",
        ]  # fmt: skip
        read_only_fields = fields
