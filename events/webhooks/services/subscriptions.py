"""Writes of the webhook subscriptions: created, changed, deleted, their secret rotated.
Each is audited; the registry of which stores have webhooks is read again after it."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.services import audit_record
from events.models import StockEvent

from ..models import WebhookSubscription
from ..registry import active_stores
from ..signing import new_secret
from .messages import send_deliver

AUDITED_FIELDS = ["url", "event_types", "is_active"]


@transaction.atomic
def subscription_create(
    *, store, url: str, event_types: list[str], is_active: bool = True, actor
) -> WebhookSubscription:
    """A subscription to the store's events from now on (the events already in the log
    are not sent). ``url`` was checked (``addresses.checked_receiver``) by the caller's
    form or serializer. The new secret is on the returned object, to be shown once."""
    last_seq = StockEvent.objects.filter(store=store).aggregate(last=Max("seq"))["last"] or 0
    subscription = WebhookSubscription.objects.create(
        store=store,
        url=url,
        event_types=sorted(set(event_types)),
        is_active=is_active,
        secret=new_secret(),
        sent_seq=last_seq,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_subscription(subscription, "webhook.create", before=None, actor=actor)
    _stores_changed()
    return subscription


@transaction.atomic
def subscription_update(
    *, subscription: WebhookSubscription, actor, **changes
) -> WebhookSubscription:
    """Change ``url``, ``event_types`` or ``is_active``. Activating again clears the
    failure count and the disabling; delivery resumes from where it stopped (the events
    meanwhile are delivered too, as long as the log keeps them). Activating again or a
    new URL ends a hold (``held_until``): the events it held back go now."""
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    before = _audited(subscription)
    if "event_types" in changes:
        changes["event_types"] = sorted(set(changes["event_types"]))
    for field, value in changes.items():
        if field not in AUDITED_FIELDS:
            raise TypeError(f"{field} cannot be changed here")
        setattr(subscription, field, value)
    if changes.get("is_active") and not before["is_active"]:
        subscription.consecutive_failures = 0
        subscription.disabled_at, subscription.disabled_reason = None, ""
    if subscription.url != before["url"] or (changes.get("is_active") and not before["is_active"]):
        # A run still sending to the old URL loses its lease (it records nothing; its
        # events go again, to the new one).
        subscription.held_until = subscription.sending_until = None
    subscription.save()
    if _audited(subscription) != before:
        audit_subscription(subscription, "webhook.update", before=before, actor=actor)
    _stores_changed()
    if subscription.is_active and _audited(subscription) != before:
        # What waited (while it was off, or held by a URL that did not answer) goes now.
        transaction.on_commit(lambda: send_deliver(subscription.pk), robust=True)
    return subscription


@transaction.atomic
def subscription_delete(*, subscription: WebhookSubscription, actor) -> None:
    """Delete it with its deliveries and their log."""
    audit_subscription(
        subscription, "webhook.delete", before=_audited(subscription), actor=actor, after=None
    )
    subscription.delete()
    _stores_changed()


def _stores_changed() -> None:
    """This process reads which stores have webhooks again, now and after the commit."""
    active_stores.read_again()
    transaction.on_commit(active_stores.read_again)


@transaction.atomic
def subscription_rotate_secret(*, subscription: WebhookSubscription, actor) -> WebhookSubscription:
    """A new secret signs from now on; the current one signs too for
    ``WEBHOOK_ROTATION_GRACE_SECONDS``, while receivers switch. Returns the
    subscription with its new secret, to be shown once."""
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_expires_at = timezone.now() + timedelta(
        seconds=settings.WEBHOOK_ROTATION_GRACE_SECONDS
    )
    subscription.secret = new_secret()
    subscription.save(
        update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"]
    )
    expires = subscription.previous_secret_expires_at
    audit_subscription(
        subscription,
        "webhook.rotate_secret",
        before=None,
        after={"previous_secret_expires_at": expires.isoformat()},
        actor=actor,
    )
    return subscription


def signing_secrets(subscription: WebhookSubscription, now) -> list[str]:
    """The secrets that sign a delivery sent at ``now``: the current one, and the
    previous one while its grace period lasts."""
    secrets = [subscription.secret]
    expires = subscription.previous_secret_expires_at
    if subscription.previous_secret and expires and expires > now:
        secrets.append(subscription.previous_secret)
    return secrets


def _audited(subscription) -> dict:
    return {field: getattr(subscription, field) for field in AUDITED_FIELDS}


def audit_subscription(subscription, action, *, before, actor, after=...) -> None:
    """An audit event of the subscription; ``after`` defaults to its audited fields."""
    audit_record(
        action=action,
        object_type="events.webhooksubscription",
        object_id=subscription.pk,
        object_repr=subscription.url[:200],
        store=subscription.store_id,
        before=before,
        after=_audited(subscription) if after is ... else after,
        actor=actor,
    )
