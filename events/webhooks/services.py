"""Writes of the webhooks: subscriptions, and the deliveries of the event log to them.

Delivery is at least once and runs off the rows: ``deliveries_enqueue`` turns a store's
events past each subscription's cursor into deliveries (the signal after a commit asks a
worker to do it at once, beat's sweep finds whatever a lost signal or message left);
``subscription_deliver`` claims due deliveries in batches (a lease: a worker that dies
mid-request leaves them to fall due again), attempts them outside any transaction over
one kept-alive connection, and records each batch at once. A stock write never waits
for a receiver: at most it sends a message (``wakeups``).
"""

import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Max, Value, When
from django.utils import timezone
from rest_framework.fields import DateTimeField

from audit.services import audit_record
from events.models import StockEvent
from inventory_site.cache_outage import CircuitOpen, broker_circuit

from . import client, wakeups
from .addresses import UrlRefused, checked_receiver
from .models import (
    DUE_STATUSES,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from .registry import active_stores
from .schedule import next_attempt_at
from .signing import body_of, headers_for, new_secret

logger = logging.getLogger(__name__)

# A claimed batch is someone's for its sending time, its last request's timeouts and
# this much more.
LEASE_MARGIN = timedelta(seconds=60)
# Deliveries claimed, sent and recorded together (each batch: two transactions of a
# few statements, and its requests over one connection), and how long a batch may
# spend sending before what went is recorded and the rest claimed anew: so a worker
# that dies re-sends at most this much, and a lease stays short (``lease_duration``).
CLAIM_SIZE = 50
BATCH_SECONDS = 10
AUDITED_FIELDS = ["url", "event_types", "is_active"]
_timestamp = DateTimeField()


# --- Subscriptions ----------------------------------------------------------------------


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
        last_enqueued_seq=last_seq,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    _audit(subscription, "webhook.create", before=None, actor=actor)
    _stores_changed()
    return subscription


@transaction.atomic
def subscription_update(
    *, subscription: WebhookSubscription, actor, **changes
) -> WebhookSubscription:
    """Change ``url``, ``event_types`` or ``is_active``. Activating again clears the
    failure count and the disabling; delivery resumes from where it stopped (the events
    meanwhile are delivered too, as long as the log keeps them)."""
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
    subscription.save()
    if _audited(subscription) != before:
        _audit(subscription, "webhook.update", before=before, actor=actor)
    _stores_changed()
    return subscription


@transaction.atomic
def subscription_delete(*, subscription: WebhookSubscription, actor) -> None:
    """Delete it with its deliveries and their log."""
    _audit(subscription, "webhook.delete", before=_audited(subscription), actor=actor, after=None)
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
    audit_record(
        action="webhook.rotate_secret",
        object_type="events.webhooksubscription",
        object_id=subscription.pk,
        object_repr=subscription.url,
        store=subscription.store_id,
        after={"previous_secret_expires_at": subscription.previous_secret_expires_at.isoformat()},
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


def _audit(subscription, action, *, before, actor, after=...) -> None:
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


# --- Enqueueing deliveries from the log ---------------------------------------------------


def deliveries_enqueue(*, store_id: int) -> set[int]:
    """Create the deliveries of the store's events that its active subscriptions have
    not had yet, batch after batch; returns the ids of the subscriptions that got some.

    Each batch locks the store's active subscriptions (in id order), reads the events
    past the lowest cursor and moves every cursor, in one transaction: two workers
    enqueueing the same store run one after the other and never enqueue an event twice.
    """
    touched: set[int] = set()
    while True:
        batch_touched, more = _enqueue_batch(store_id)
        touched |= batch_touched
        if not more:
            return touched


@transaction.atomic
def _enqueue_batch(store_id: int) -> tuple[set[int], bool]:
    subscriptions = list(
        WebhookSubscription.objects.select_for_update()
        .filter(store_id=store_id, is_active=True)
        .select_related("store")
        .order_by("pk")
    )
    if not subscriptions:
        return set(), False
    low = min(subscription.last_enqueued_seq for subscription in subscriptions)
    limit = settings.WEBHOOK_BATCH_SIZE
    events = list(
        StockEvent.objects.filter(store_id=store_id, seq__gt=low)
        .order_by("seq")
        .values(
            "seq", "type", "product__sku", "on_hand", "reserved", "available",
            "reorder_point", "version", "at",
        )[:limit]
    )  # fmt: skip
    if not events:
        return set(), False
    code = subscriptions[0].store.code
    payloads = [_payload(code, event) for event in events]
    now, deliveries, touched = timezone.now(), [], set()
    for subscription in subscriptions:
        for payload in payloads:
            if payload["seq"] > subscription.last_enqueued_seq and subscription.wants(
                payload["type"]
            ):
                deliveries.append(
                    WebhookDelivery(
                        subscription=subscription,
                        store_id=store_id,
                        seq=payload["seq"],
                        event_type=payload["type"],
                        payload=payload,
                        next_attempt_at=now,
                    )
                )
                touched.add(subscription.pk)
    last = payloads[-1]["seq"]
    WebhookDelivery.objects.bulk_create(deliveries)
    WebhookSubscription.objects.filter(
        pk__in=[subscription.pk for subscription in subscriptions], last_enqueued_seq__lt=last
    ).update(last_enqueued_seq=last)
    return touched, len(events) == limit


def _payload(store_code: str, event: dict) -> dict:
    """The body of an event's delivery: the fields of the events API, and the store."""
    return {
        "store": store_code,
        "seq": event["seq"],
        "type": event["type"],
        "sku": event["product__sku"],
        "on_hand": event["on_hand"],
        "reserved": event["reserved"],
        "available": event["available"],
        "reorder_point": event["reorder_point"],
        "version": event["version"],
        "at": _timestamp.to_representation(event["at"]),
    }


# --- Attempting deliveries --------------------------------------------------------------


def subscription_deliver(subscription_id: int, *, limit: int | None = None) -> int:
    """Attempt the subscription's due deliveries, oldest first, batch after batch over
    one kept-alive connection, until none is due (or ``limit`` were attempted); returns
    how many were attempted. Several workers may run this for the same subscription:
    each claims other rows.

    A request that got no answer at all (refused, timed out) ends the run: the rest of
    the batch is released untried, so a receiver that is down costs one attempt (and at
    most one timeout) per run, not one per event. An answered failure (4xx, 5xx, 3xx)
    does not: it is the event's, and the next one may succeed. Between batches the
    subscription is read again: a run ends when it was switched off (by a manager, or by
    ``_disable_if_failing`` in the last record) or sent elsewhere."""
    limit = limit or settings.WEBHOOK_BATCH_SIZE
    subscription = _active_subscription(subscription_id)
    if subscription is None:
        return 0
    url = subscription.url
    try:
        receiver = checked_receiver(url)
    except UrlRefused as refusal:
        receiver, refused = None, client.Outcome(None, 0, str(refusal))
    attempted = 0
    with contextlib.ExitStack() as stack:
        session = None
        if receiver is not None:
            session = stack.enter_context(
                client.Session(receiver, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
            )
        while attempted < limit:
            if attempted:
                subscription = _active_subscription(subscription_id)
                if subscription is None or subscription.url != url:
                    break
            size = min(CLAIM_SIZE, limit - attempted)
            batch = _claim(subscription_id, size)
            if not batch:
                break
            outcomes, started = [], time.monotonic()
            for delivery in batch:
                if outcomes and time.monotonic() - started > BATCH_SECONDS:
                    break  # record what went, within the lease; the rest is claimed anew
                now = timezone.now()
                if session is None:
                    outcome = refused
                else:
                    outcome = _attempt(session, subscription, delivery, now)
                outcomes.append((delivery, outcome, now))
                if outcome.response_code is None:
                    break
            _record(subscription_id, outcomes, released=batch[len(outcomes) :])
            attempted += len(outcomes)
            if outcomes[-1][1].response_code is None:
                break
            if len(batch) < size and len(outcomes) == len(batch):
                # Nothing more was due when this batch was claimed; what falls due
                # since has a message of its own (``wakeups``) or the sweep.
                break
    return attempted


def _active_subscription(subscription_id: int) -> WebhookSubscription | None:
    return WebhookSubscription.objects.filter(pk=subscription_id, is_active=True).first()


@dataclass(frozen=True)
class Claimed:
    """What a worker holds of a claimed delivery: enough to send it, and the due time
    it goes back to if it is released untried."""

    pk: int
    seq: int
    payload: dict
    due_at: object
    leased_until: object = None

    @property
    def webhook_id(self) -> str:
        return f"{self.payload['store']}:{self.seq}"


@transaction.atomic
def _claim(subscription_id: int, size: int) -> list[Claimed]:
    """Up to ``size`` due deliveries of the subscription, leased to this worker: their
    ``next_attempt_at`` moves past the time their requests may take, so that no other
    worker takes them meanwhile, and a worker that dies leaves them to fall due again.
    Two statements, whatever ``size`` is."""
    now = timezone.now()
    rows = list(
        WebhookDelivery.objects.select_for_update(skip_locked=True)
        .filter(
            subscription_id=subscription_id,
            status__in=DUE_STATUSES,
            next_attempt_at__lte=now,
        )
        .order_by("next_attempt_at", "seq")
        .values_list("pk", "seq", "payload", "next_attempt_at")[:size]
    )
    if not rows:
        return []
    leased_until = now + lease_duration()
    WebhookDelivery.objects.filter(pk__in=[row[0] for row in rows]).update(
        next_attempt_at=leased_until, updated_at=now
    )
    return [Claimed(*row, leased_until=leased_until) for row in rows]


def lease_duration() -> timedelta:
    """How long a claimed batch is its worker's: the time it may spend sending
    (``BATCH_SECONDS``), then its last request's connect, send and answer with one retry
    on a new connection (3 timeouts), and a margin. A worker that dies leaves its batch
    to fall due again after this."""
    return timedelta(seconds=BATCH_SECONDS + 3 * settings.WEBHOOK_TIMEOUT_SECONDS) + LEASE_MARGIN


def _attempt(session: client.Session, subscription, delivery: Claimed, now) -> client.Outcome:
    body = body_of(delivery.payload)
    headers = headers_for(
        message_id=delivery.webhook_id,
        body=body,
        at=now,
        secrets_signing=signing_secrets(subscription, now),
    )
    return session.post(body.encode(), headers)


@transaction.atomic
def _record(subscription_id: int, outcomes: list, *, released: list[Claimed]) -> None:
    """How a batch went, in one transaction of a few statements: an attempt row per
    request, each delivery's new status and next try (the retry schedule counts its
    attempts), the released ones due again as they were, and the subscription's run of
    failures. A delivery deleted meanwhile (with its subscription) is skipped."""
    claimed = [delivery for delivery, _, _ in outcomes] + released
    current = {
        pk: (attempts, schedule_start)
        for pk, attempts, schedule_start in WebhookDelivery.objects.select_for_update()
        .filter(pk__in=[delivery.pk for delivery in claimed])
        .order_by("pk")
        .values_list("pk", "attempts", "schedule_start")
    }
    now = timezone.now()
    attempts, changes, failures, succeeded_since = [], defaultdict(list), 0, False
    for delivery, outcome, at in outcomes:
        if delivery.pk not in current:
            continue
        done, schedule_start = current[delivery.pk]
        number = done + 1
        if outcome.succeeded:
            status, retry_at = DeliveryStatus.SUCCEEDED, None
            failures, succeeded_since = 0, True
        else:
            retry_at = next_attempt_at(number - schedule_start, now)
            status = DeliveryStatus.FAILED if retry_at else DeliveryStatus.GIVING_UP
            failures += status == DeliveryStatus.GIVING_UP
        attempts.append(
            WebhookAttempt(
                delivery_id=delivery.pk,
                number=number,
                succeeded=outcome.succeeded,
                response_code=outcome.response_code,
                duration_ms=outcome.duration_ms,
                error=outcome.error,
                at=at,
                next_attempt_at=retry_at,
            )
        )
        change = (
            ("status", status),
            ("attempts", number),
            ("last_response_code", outcome.response_code),
            ("last_error", outcome.error),
        )
        changes[change].append((delivery.pk, outcome.duration_ms, retry_at))
    WebhookAttempt.objects.bulk_create(attempts)
    # One UPDATE per distinct outcome (a batch that went well is one or a few); what
    # differs row by row (a duration, a retry's jittered time) is a CASE on the key.
    for change, rows in changes.items():
        WebhookDelivery.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(
            **dict(change),
            last_duration_ms=_per_row(
                "last_duration_ms", [(pk, duration) for pk, duration, _ in rows]
            ),
            next_attempt_at=_per_row(
                "next_attempt_at", [(pk, retry_at) for pk, _, retry_at in rows]
            ),
            updated_at=now,
        )
    released = [delivery for delivery in released if delivery.pk in current]
    if released:
        # Only while still this worker's: a lease that ran out may be another's now.
        WebhookDelivery.objects.filter(
            pk__in=[delivery.pk for delivery in released],
            next_attempt_at=released[0].leased_until,
        ).update(
            next_attempt_at=_per_row(
                "next_attempt_at", [(delivery.pk, delivery.due_at) for delivery in released]
            ),
            updated_at=now,
        )
    subscriptions = WebhookSubscription.objects.filter(pk=subscription_id)
    if succeeded_since:
        subscriptions.exclude(consecutive_failures=failures).update(consecutive_failures=failures)
    elif failures:
        subscriptions.update(consecutive_failures=F("consecutive_failures") + failures)
    if failures:
        _disable_if_failing(subscription_id)


def _per_row(field: str, values: list[tuple[int, object]]):
    """An UPDATE's value of a delivery's ``field`` for rows that differ: the value
    itself when all are equal, else a CASE on the primary key."""
    distinct = {value for _, value in values}
    if len(distinct) == 1:
        return distinct.pop()
    output_field = WebhookDelivery._meta.get_field(field)
    return Case(
        *(When(pk=pk, then=Value(value, output_field=output_field)) for pk, value in values),
        output_field=output_field,
    )


def _disable_if_failing(subscription_id: int) -> None:
    """Past ``WEBHOOK_DISABLE_AFTER_FAILURES`` deliveries given up in a row, the
    subscription is disabled, and the audit log says so. Caller is in a transaction."""
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription_id)
    threshold = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    if not subscription.is_active or subscription.consecutive_failures < threshold:
        return
    subscription.is_active = False
    subscription.disabled_at = timezone.now()
    subscription.disabled_reason = (
        f"{subscription.consecutive_failures} deliveries in a row failed every retry."
    )[:200]
    subscription.save(update_fields=["is_active", "disabled_at", "disabled_reason", "updated_at"])
    audit_record(
        action="webhook.disable",
        object_type="events.webhooksubscription",
        object_id=subscription.pk,
        object_repr=subscription.url[:200],
        store=subscription.store_id,
        before={"is_active": True},
        after={
            "is_active": False,
            "consecutive_failures": subscription.consecutive_failures,
            "reason": subscription.disabled_reason,
        },
    )


def delivery_redeliver(*, delivery: WebhookDelivery, actor) -> WebhookDelivery:
    """Send a delivery again now, whatever became of it, with a fresh retry schedule;
    the attempts so far stay in its log."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        delivery.status = DeliveryStatus.PENDING
        delivery.schedule_start = delivery.attempts
        delivery.next_attempt_at = timezone.now()
        delivery.save(update_fields=["status", "schedule_start", "next_attempt_at", "updated_at"])
        audit_record(
            action="webhook.redeliver",
            object_type="events.webhookdelivery",
            object_id=delivery.pk,
            object_repr=delivery.webhook_id,
            store=delivery.store_id,
            actor=actor,
        )
        transaction.on_commit(lambda: send_deliver(delivery.subscription_id), robust=True)
    return delivery


# --- What workers are asked to do ---------------------------------------------------------


def stores_dispatch(store_ids) -> int:
    """Enqueue the stores' new events and have their subscriptions delivered."""
    touched: set[int] = set()
    for store_id in sorted(set(store_ids)):
        touched |= deliveries_enqueue(store_id=store_id)
    for subscription_id in sorted(touched):
        send_deliver(subscription_id)
    return len(touched)


def webhooks_sweep() -> int:
    """Beat's sweep: enqueue every store that has active subscriptions (events whose
    signal or message was lost), then have every subscription with due deliveries
    delivered (retries fallen due, deliveries whose worker died). Returns how many
    subscriptions were sent to delivery."""
    store_ids = WebhookSubscription.objects.filter(is_active=True).values_list(
        "store_id", flat=True
    )
    for store_id in sorted(set(store_ids)):
        deliveries_enqueue(store_id=store_id)
    due = (
        WebhookDelivery.objects.filter(
            status__in=DUE_STATUSES,
            next_attempt_at__lte=timezone.now(),
            subscription__is_active=True,
        )
        .values_list("subscription_id", flat=True)
        .distinct()
    )
    subscription_ids = sorted(set(due))
    for subscription_id in subscription_ids:
        send_deliver(subscription_id)
    return len(subscription_ids)


def send_dispatch(store_ids) -> None:
    """After a commit that wrote events: a worker enqueues and delivers them (one waiting
    message per store, ``wakeups``). In the embedded mode (eager Celery) that happens
    here and now."""
    from .tasks import dispatch_webhooks

    if settings.CELERY_TASK_ALWAYS_EAGER:
        _send(dispatch_webhooks, sorted(set(store_ids)))
    elif store_ids := wakeups.to_wake(wakeups.STORE, store_ids):
        # Run a moment later: the commits of that moment share the message.
        if not _send(dispatch_webhooks, store_ids, countdown=settings.WEBHOOK_COALESCE_SECONDS):
            wakeups.woken(wakeups.STORE, store_ids)  # no message waits: the next may send


def send_deliver(subscription_id: int) -> None:
    from .tasks import deliver_webhooks

    if settings.CELERY_TASK_ALWAYS_EAGER:
        _send(deliver_webhooks, subscription_id)
    elif wakeups.to_wake(wakeups.SUBSCRIPTION, [subscription_id]):
        if not _send(deliver_webhooks, subscription_id):
            wakeups.woken(wakeups.SUBSCRIPTION, [subscription_id])


def _send(task, argument, *, countdown: float = 0) -> bool:
    """Whether the task ran (eager) or its message was queued."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        task.apply(args=[argument])
        return True
    try:
        with broker_circuit:
            task.apply_async(args=[argument], retry=False, countdown=countdown or None)
    except CircuitOpen:
        return False  # the sweep finds the rows
    except Exception as error:  # noqa: BLE001 - the rows are stored; the sweep finds them
        logger.warning("%s not queued (%s); the webhook sweep will do it", task.name, error)
        return False
    return True
