"""Webhook subscriptions of a store, and the deliveries of its event log to them.

The rows are the truth, the Celery messages only hurry them along: a subscription's
cursor (``sent_seq``) says up to which of its store's events every one was sent once (or
did not match), so events whose signal or message was lost are found by the beat sweep
in the log itself. A delivery row is written when an event's first attempt went, with
how it went; one due again (failed, its ``next_attempt_at`` passed, or sent again by
hand) is retried by the subscription's next run. A delivery keeps the body it sends
(``payload``), so pruning the event log never strands a delivery still being retried.
"""

from django.conf import settings
from django.db import models

from stores.models import Store

from .signing import message_id


class WebhookSubscription(models.Model):
    """Where a store's events are POSTed, which types (``event_types``: empty means
    every type), and the secrets that sign them. During a rotation ``previous_secret``
    signs too, until ``previous_secret_expires_at``."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    url = models.URLField(max_length=2000)
    event_types = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # Deliveries given up on since the last one that succeeded.
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True, default="")
    # The store's events up to this seq were each sent once (or did not match): the
    # events after it wait in the log for the next run.
    sent_seq = models.BigIntegerField(default=0)
    # A run holds the subscription until then (one worker sends for it at a time); one
    # that died leaves it free once this has passed.
    sending_until = models.DateTimeField(null=True, blank=True)
    # The receiver did not answer: nothing is sent to it until then (the next try of the
    # event it missed, at most WEBHOOK_HOLD_MAX_SECONDS); the events after it wait.
    held_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["store", "pk"]
        indexes = [models.Index(fields=["is_active", "store"], name="webhooksub_active_store_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(sent_seq__gte=0), name="webhooksub_cursor_non_negative"
            )
        ]

    def __str__(self):
        return f"{self.url} ({'active' if self.is_active else 'inactive'})"

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Sent again by hand; waiting for its attempt"
    FAILED = "failed", "Failed; retried at next_attempt_at"
    SUCCEEDED = "succeeded", "Delivered"
    GIVING_UP = "giving_up", "Every retry failed; no more attempts"


DUE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
FINISHED_STATUSES = (DeliveryStatus.SUCCEEDED, DeliveryStatus.GIVING_UP)


class WebhookDelivery(models.Model):
    """One event to one subscription, written once its first attempt went: attempted
    again until the receiver answers 2xx, on the retry schedule
    (``WEBHOOK_RETRY_SCHEDULE``), then given up. ``attempts`` counts every attempt; a
    manual redelivery restarts the schedule from ``schedule_start``."""

    # Its index is the unique (subscription, seq)'s first column: no index of its own,
    # one less for each delivery written to keep.
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+", db_index=False)
    seq = models.BigIntegerField()
    event_type = models.CharField(max_length=24)
    payload = models.JSONField()
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    schedule_start = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["subscription", "-seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "seq"], name="webhookdelivery_subscription_seq_unique"
            )
        ]
        indexes = [
            # The questions of the sweep and of a worker: which deliveries are due?
            models.Index(
                fields=["subscription", "next_attempt_at"],
                condition=models.Q(status__in=DUE_STATUSES),
                name="webhookdelivery_due_idx",
            ),
            # The retention's: which finished deliveries are old enough to go?
            models.Index(
                fields=["updated_at"],
                condition=models.Q(status__in=FINISHED_STATUSES),
                name="webhookdelivery_finished_idx",
            ),
        ]

    def __str__(self):
        return f"{self.webhook_id} to #{self.subscription_id} ({self.status})"

    @property
    def webhook_id(self) -> str:
        """The Standard Webhooks message id (``signing.message_id``)."""
        return message_id(self.payload)


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery, as it went: kept for the delivery log, never
    changed (the app's role may insert and delete these rows, not update them)."""

    # Indexed as the first column of the unique (delivery, number), as above.
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="log", db_index=False
    )
    number = models.PositiveIntegerField()
    succeeded = models.BooleanField()
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField()
    error = models.TextField(blank=True, default="")
    at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "number"], name="webhookattempt_delivery_number_unique"
            )
        ]

    def __str__(self):
        return f"attempt {self.number} of {self.delivery_id}"
