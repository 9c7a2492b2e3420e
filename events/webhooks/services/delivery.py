"""Delivery of a subscription's events, at least once, in runs off the rows.

A run (``subscription_deliver``) holds the subscription's lease (``sending_until``), so
one worker at a time sends for it, and no transaction stays open while it does. It
first attempts the deliveries due again (failed ones whose next try came, redeliveries),
then the store's events past the subscription's cursor (``sent_seq``) in order, batch
after batch over one kept-alive connection. An event is written as a delivery only once
its first attempt went, with how it went: a batch costs the database the cursor's move
and the insert of its deliveries with their attempts, one statement on PostgreSQL
(``sql``), whatever its size. A worker that dies mid-batch leaves the cursor where it was: the
events are sent again (receivers deduplicate by ``webhook-id``) once its lease ran out.

A request that got no answer at all (refused, timed out) ends the run, and holds the
subscription (``held_until``): until that event's next try, or for at most
``WEBHOOK_HOLD_MAX_SECONDS``, nothing else is sent to it, neither retries nor the events
after it, which wait in the log. So a receiver that is down costs one attempt per hold,
not one per event, and one that is back gets what waited when the hold ends (a message
is due then), whatever the retry schedule of the event it missed. An answered failure
(4xx, 5xx, 3xx) holds nothing: it is the event's, retried on its own, and the next
event may succeed.
"""

import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone
from rest_framework.fields import DateTimeField

from audit.services import audit_record
from events.models import StockEvent

from .. import client
from ..addresses import UrlRefused, checked_receiver
from ..models import (
    DUE_STATUSES,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from ..schedule import next_attempt_at
from ..signing import body_of, headers_for, message_id
from . import sql
from .messages import send_deliver
from .subscriptions import audit_subscription, signing_secrets

# A run's lease lasts for a batch's sending time, its last request's timeouts and this
# much more; each batch's record renews it.
LEASE_MARGIN = timedelta(seconds=60)
# Deliveries sent and recorded together (each batch: one transaction of a few
# statements, and its requests over one connection), and how long a batch may spend
# sending before what went is recorded and the rest sent by the next batch: so a worker
# that dies re-sends at most this much, and a lease stays short (``lease_duration``).
CLAIM_SIZE = 50
BATCH_SECONDS = 10
_timestamp = DateTimeField()
DUE = [str(status) for status in DUE_STATUSES]


class LeaseLost(Exception):
    """This run's lease ran out and another run took the subscription: what this batch
    sent is theirs to record (they send it again; receivers deduplicate)."""


@dataclass
class Lease:
    subscription: WebhookSubscription
    until: datetime
    # The hold this run set, if any: a message is due then (``subscription_deliver``).
    held_until: datetime | None = None
    # PostgreSQL: the first events past the cursor, read with the lease (``sql.lease``):
    # rows of EVENT_FIELDS, made into ``Unsent`` by the run.
    first_events: list | None = None
    # Set once the run's last record let go of the subscription: whether work was left.
    work_left: bool | None = None


def lease_duration() -> timedelta:
    """How long a run holds its subscription without recording: the time a batch may
    spend sending (``BATCH_SECONDS``), then its last request's connect, send and answer
    with one retry on a new connection (3 timeouts), and a margin. A worker that dies
    leaves the subscription to the next run after this."""
    return timedelta(seconds=BATCH_SECONDS + 3 * settings.WEBHOOK_TIMEOUT_SECONDS) + LEASE_MARGIN


def subscription_deliver(subscription_id: int, *, limit: int | None = None) -> int:
    """Attempt what the subscription has to send (due retries, then the events past its
    cursor) until nothing is left, or ``limit`` were attempted; returns how many were.

    A run that finds another holding the subscription returns 0 at once. The holder,
    letting go, learns whether work is left, whether it sent anything or not: events
    committed while it sent have a message of their own (``wakeups``), except those
    whose message came while it held the subscription, so it sends one more, coalesced
    with whatever comes next. In the embedded mode (no worker to wake) it goes on
    itself, up to ``limit``; what is left then goes with the store's next commit."""
    limit = limit or settings.WEBHOOK_BATCH_SIZE
    attempted, idle_passes = 0, 0
    while True:
        lease = _lease(subscription_id)
        if lease is None:
            return attempted
        lost = False
        try:
            done, progressed = _run(lease, limit - attempted)
        except LeaseLost:
            done, progressed, lost = 0, False, True
        finally:
            work_left = _release(lease)
        if lost:
            return attempted
        attempted += done
        idle_passes += not progressed
        if not work_left:
            if lease.held_until and not settings.CELERY_TASK_ALWAYS_EAGER:
                # Its next try, without waiting for the sweep.
                wait = (lease.held_until - timezone.now()).total_seconds()
                send_deliver(subscription_id, countdown=max(wait, 0))
            return attempted
        if settings.CELERY_TASK_ALWAYS_EAGER:
            if attempted >= limit or idle_passes > 1:
                return attempted
            continue
        send_deliver(subscription_id, countdown=settings.WEBHOOK_COALESCE_SECONDS)
        return attempted


def _lease(subscription_id: int) -> Lease | None:
    """The subscription, held by this run, if it is active and no other run holds it;
    with its store's code and whether retries are due (``_with_run_facts``), and on
    PostgreSQL the first events past its cursor (``sql.lease``)."""
    now = timezone.now()
    until = now + lease_duration()
    if connection.vendor == "postgresql":
        params = {
            "id": subscription_id, "until": until, "now": now, "due_statuses": DUE,
            "size": CLAIM_SIZE,
        }  # fmt: skip
        found = list(WebhookSubscription.objects.raw(sql.lease(), params))
        # psycopg2 decodes the json column: first_events is a list.
        return Lease(found[0], until, first_events=found[0].first_events) if found else None
    taken = (
        WebhookSubscription.objects.filter(pk=subscription_id, is_active=True)
        .filter(Q(sending_until__isnull=True) | Q(sending_until__lt=now))
        .update(sending_until=until)
    )
    if not taken:
        return None
    return Lease(_with_run_facts(now).get(pk=subscription_id), until)


def _with_run_facts(now):
    """Subscriptions with what a run reads of them besides their row."""
    return WebhookSubscription.objects.annotate(
        store_code=F("store__code"), retries_due=Exists(_due_again(now))
    )


def _due_again(now):
    """Of a subscription (the outer query's row): its deliveries due again."""
    return WebhookDelivery.objects.filter(
        subscription=OuterRef("pk"), status__in=DUE_STATUSES, next_attempt_at__lte=now
    )


def _release(lease: Lease) -> bool:
    """Let go of the subscription, if it is still this run's; returns whether it has
    work left (``_has_work``), as it was once let go."""
    if lease.work_left is not None:
        return lease.work_left  # the last record let go (``sql.record_sent``)
    pk = lease.subscription.pk
    if connection.vendor == "postgresql":
        params = {
            "id": pk, "leased_until": lease.until, "now": timezone.now(), "due_statuses": DUE,
        }  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(sql.release(), params)
            row = cursor.fetchone()
        if row is not None:
            return row[0]
    else:
        WebhookSubscription.objects.filter(pk=pk, sending_until=lease.until).update(
            sending_until=None
        )
    return _has_work(pk)


def _has_work(subscription_id: int) -> bool:
    """Whether the subscription, as it is now, has something to send: not held, a
    delivery due again or an event past its cursor."""
    now = timezone.now()
    return (
        WebhookSubscription.objects.filter(pk=subscription_id, is_active=True)
        .filter(work_due(now))
        .exists()
    )


def work_due(now) -> Q:
    """Of a subscription: what ``_has_work`` asks, as a condition on its row."""
    unsent = StockEvent.objects.filter(store=OuterRef("store"), seq__gt=OuterRef("sent_seq"))
    not_held = Q(held_until__isnull=True) | Q(held_until__lte=now)
    return not_held & (Q(Exists(_due_again(now))) | Q(Exists(unsent)))


def _run(lease: Lease, budget: int) -> tuple[int, bool]:
    """The retries due, then the events past the cursor, batch after batch, while the
    subscription stays active and answering, until ``budget`` events were attempted or
    passed over (not of its types); returns how many were attempted and whether
    anything moved (an attempt, or the cursor). Between batches the subscription is
    read again: switched off (by a manager, or by its own run of failures) the run ends;
    held, it ends; sent elsewhere, the next batch goes there."""
    subscription = lease.subscription
    attempted, handled = 0, 0
    with _Sessions() as sessions:
        while subscription.retries_due and handled < budget and not _held(subscription):
            size = min(CLAIM_SIZE, budget - handled)
            batch = _claim(subscription.pk, size)
            if not batch:
                break
            session = sessions.to(subscription.url)
            outcomes = _send(session, subscription, batch)
            kept = _record(subscription.pk, outcomes, released=batch[len(outcomes) :], lease=lease)
            attempted, handled = attempted + len(outcomes), handled + len(outcomes)
            if not kept:
                raise LeaseLost
            if outcomes[-1][1].response_code is None:
                return attempted, True  # no answer: the run ends (held, see _hold)
            subscription = _reread(subscription)
            if subscription is None:
                return attempted, True
            if len(batch) < size and len(outcomes) == len(batch):
                break  # nothing more was due when this batch was claimed
        read_with_lease = lease.first_events  # as of the cursor the lease found
        while handled < budget and not _held(subscription):
            size = min(CLAIM_SIZE, budget - handled)
            if read_with_lease is not None and subscription.sent_seq == lease.subscription.sent_seq:
                # Up to CLAIM_SIZE were read, so a short batch still means "nothing more".
                events = unsent_of_rows(subscription.store_code, read_with_lease[:size])
            else:
                events = _events_after(subscription, size)
            read_with_lease = None
            if not events:
                break
            session = sessions.to(subscription.url)
            wanted = [event for event in events if subscription.wants(event.type)]
            outcomes = _send(session, subscription, wanted)
            if len(outcomes) < len(wanted):  # stopped early: up to the last one sent
                sent_up_to = outcomes[-1][0].seq
            else:
                sent_up_to = events[-1].seq
            handled_now = len([event for event in events if event.seq <= sent_up_to])
            unanswered = bool(outcomes) and outcomes[-1][1].response_code is None
            # Nothing more was there (what came since is _has_work's), no answer (the
            # run ends, held: see _hold), or the budget is spent: the run's last batch.
            last = (
                unanswered
                or (len(events) < size and len(outcomes) == len(wanted))
                or handled + handled_now >= budget
            )
            lease.until = _record_sent(lease, outcomes, sent_up_to=sent_up_to, release=last)
            attempted += len(outcomes)
            handled += handled_now
            if last:
                break
            subscription = _reread(subscription)
            if subscription is None:
                break
    return attempted, handled > 0


def _reread(subscription: WebhookSubscription) -> WebhookSubscription | None:
    """The subscription as it is now, if still active."""
    return _with_run_facts(timezone.now()).filter(pk=subscription.pk, is_active=True).first()


def _held(subscription: WebhookSubscription) -> bool:
    return subscription.held_until is not None and subscription.held_until > timezone.now()


class _Sessions:
    """One kept-alive connection per receiver URL a run sends to (usually one)."""

    def __init__(self):
        self._stack = contextlib.ExitStack()
        self._url, self._session = None, None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._stack.close()

    def to(self, url: str):
        """A ``client.Session`` to ``url``, or the ``client.Outcome`` of its refusal."""
        if url != self._url:
            self._stack.close()
            self._url = url
            try:
                receiver = checked_receiver(url)
            except UrlRefused as refusal:
                self._session = client.Outcome(None, 0, str(refusal))
            else:
                self._session = self._stack.enter_context(
                    client.Session(receiver, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
                )
        return self._session


def _send(session, subscription, items) -> list[tuple]:
    """POST each of ``items`` (``Unsent`` or ``Claimed``) in turn, until one gets no
    answer or the batch's time is up; returns ``(item, outcome, at)`` of those sent."""
    outcomes, started = [], time.monotonic()
    for item in items:
        if outcomes and time.monotonic() - started > BATCH_SECONDS:
            break  # record what went, within the lease; the rest goes in the next batch
        now = timezone.now()
        if isinstance(session, client.Outcome):  # the URL was refused
            outcome = session
        else:
            body = item.body
            headers = headers_for(
                message_id=item.webhook_id,
                body=body,
                at=now,
                secrets_signing=signing_secrets(subscription, now),
            )
            outcome = session.post(body.encode(), headers)
        outcomes.append((item, outcome, now))
        if outcome.response_code is None:
            break
    return outcomes


# --- The events past the cursor -----------------------------------------------------------


@dataclass(frozen=True)
class Unsent:
    """An event past a subscription's cursor, with the body it is sent as."""

    seq: int
    type: str
    payload: dict
    body: str

    @property
    def webhook_id(self) -> str:
        return message_id(self.payload)


# What a delivery's body is made of, of an event (``sql.lease`` reads them in this order).
EVENT_FIELDS = (
    "seq", "type", "product__sku", "on_hand", "reserved", "available", "reorder_point",
    "version", "at",
)  # fmt: skip


def _events_after(subscription: WebhookSubscription, size: int) -> list[Unsent]:
    """The next ``size`` events of the store past the cursor."""
    events = (
        StockEvent.objects.filter(store_id=subscription.store_id, seq__gt=subscription.sent_seq)
        .order_by("seq")
        .values(*EVENT_FIELDS)[:size]
    )
    return _unsent(subscription.store_code, events)


def unsent_of_rows(store_code: str, rows) -> list[Unsent]:
    """``Unsent`` of the events read with the lease (``sql.lease``: arrays of
    ``EVENT_FIELDS``)."""
    return _unsent(store_code, (dict(zip(EVENT_FIELDS, row, strict=True)) for row in rows))


def _unsent(store_code: str, events) -> list[Unsent]:
    """``Unsent`` of event rows (dicts of ``EVENT_FIELDS``; ``at`` a datetime or, read
    as JSON, its ISO 8601 text)."""
    unsent = []
    for event in events:
        if isinstance(event["at"], str):
            event["at"] = datetime.fromisoformat(event["at"])
        payload = _payload(store_code, event)
        unsent.append(Unsent(event["seq"], event["type"], payload, body_of(payload)))
    return unsent


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


def _record_sent(lease: Lease, outcomes: list, *, sent_up_to: int, release: bool) -> datetime:
    """How a batch of first attempts went, atomically: the cursor moved to
    ``sent_up_to`` with the run of failures, the hold (``_hold``) and the lease renewed,
    only while the lease is this run's (else ``LeaseLost``, and nothing is written);
    then a delivery per event sent with its attempt. One statement on PostgreSQL
    (``sql.record_sent``), which, for the run's last batch (``release``), also lets go
    of the subscription (``lease.work_left`` then says whether work was left). Returns
    the lease's new end (let go: unused)."""
    subscription = lease.subscription
    now = timezone.now()
    judged = _Judged(now)
    sent = [
        Sent(event, outcome, at, *judged.attempt(outcome, failed_attempts=1))
        for event, outcome, at in outcomes
    ]
    renewed = now + lease_duration()
    hold = _hold([(item.outcome, item.retry_at) for item in sent], now) if sent else {}
    # A batch that gave some up checks the run of failures in its own transaction.
    with transaction.atomic() if judged.failures else contextlib.nullcontext():
        if connection.vendor == "postgresql":
            kept, work_left = _record_sent_postgresql(
                lease, sent, now, sent_up_to=sent_up_to, renewed=renewed, hold=hold,
                judged=judged, release=release,
            )  # fmt: skip
        else:  # renews; _release lets go
            work_left = None
            changes = {"sent_seq": sent_up_to, "sending_until": renewed, **hold}
            changes.update(judged.failure_run())
            kept = _record_sent_portable(lease, sent, changes)
        if not kept:
            raise LeaseLost
        if judged.failures:
            _disable_if_failing(subscription.pk)
    subscription.sent_seq = sent_up_to
    lease.held_until = hold.get("held_until")
    if release:
        lease.work_left = work_left
    return renewed


@dataclass(frozen=True)
class Sent:
    """An event's first attempt, as it went."""

    event: Unsent
    outcome: client.Outcome
    at: datetime
    status: str
    retry_at: datetime | None


def _record_sent_postgresql(
    lease, sent, now, *, sent_up_to, renewed, hold, judged, release
) -> tuple[bool, bool | None]:
    """Whether the run still held the subscription, and (let go) whether work is left."""
    outcomes = [item.outcome for item in sent]
    params = {
        "subscription": lease.subscription.pk,
        "leased_until": lease.until,
        "sent_up_to": sent_up_to,
        "release": release,
        "due_statuses": DUE,
        "renewed": renewed,
        "hold_changes": bool(hold),
        "held_until": hold.get("held_until"),
        "succeeded_since": judged.succeeded_since,
        "failures": judged.failures,
        "now": now,
        "succeeded": DeliveryStatus.SUCCEEDED.value,
        "seq": [item.event.seq for item in sent],
        "type": [item.event.type for item in sent],
        "body": [item.event.body for item in sent],
        "status": [str(item.status) for item in sent],
        "code": [outcome.response_code for outcome in outcomes],
        "duration": [outcome.duration_ms for outcome in outcomes],
        "error": [outcome.error for outcome in outcomes],
        "at": [item.at for item in sent],
        "retry_at": [item.retry_at for item in sent],
    }
    with connection.cursor() as cursor:
        cursor.execute(sql.record_sent(), params)
        kept, work_left = cursor.fetchone()
    return kept, work_left


@transaction.atomic
def _record_sent_portable(lease, sent: list[Sent], changes: dict) -> bool:
    moved = WebhookSubscription.objects.filter(
        pk=lease.subscription.pk, sending_until=lease.until
    ).update(**changes)
    if moved and sent:
        _insert_sent_portable(lease.subscription, sent)
    return bool(moved)


def _insert_sent_portable(subscription: WebhookSubscription, sent: list[Sent]) -> None:
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            subscription_id=subscription.pk,
            store_id=subscription.store_id,
            seq=item.event.seq,
            event_type=item.event.type,
            payload=item.event.payload,
            status=item.status,
            attempts=1,
            next_attempt_at=item.retry_at,
            last_response_code=item.outcome.response_code,
            last_duration_ms=item.outcome.duration_ms,
            last_error=item.outcome.error,
        )
        for item in sent
    )
    WebhookAttempt.objects.bulk_create(
        _attempt_row(delivery.pk, 1, item.outcome, item.at, item.retry_at)
        for delivery, item in zip(deliveries, sent, strict=True)
    )


def _attempt_row(delivery_id, number, outcome, at, retry_at) -> WebhookAttempt:
    return WebhookAttempt(
        delivery_id=delivery_id,
        number=number,
        succeeded=outcome.succeeded,
        response_code=outcome.response_code,
        duration_ms=outcome.duration_ms,
        error=outcome.error,
        at=at,
        next_attempt_at=retry_at,
    )


def _hold(attempts: list[tuple], now) -> dict:
    """The subscription's hold after a batch of ``(outcome, retry_at)``: a run stops at
    its first request without an answer, so the last one says. Unanswered, new events
    and retries wait until that event's next try (``retry_at``), at most
    ``WEBHOOK_HOLD_MAX_SECONDS`` (that long if it was given up); answered, a hold left
    from before is over."""
    outcome, retry_at = attempts[-1]
    if outcome.response_code is not None:
        return {"held_until": None}
    longest = now + timedelta(seconds=settings.WEBHOOK_HOLD_MAX_SECONDS)
    return {"held_until": min(retry_at, longest) if retry_at else longest}


@dataclass
class _Judged:
    """What a batch's attempts come to: each one's status and next try (the retry
    schedule), and the subscription's run of failures: deliveries given up since the
    batch's last success (``succeeded_since``), or since it began."""

    now: datetime
    failures: int = 0
    succeeded_since: bool = False

    def attempt(self, outcome: client.Outcome, *, failed_attempts: int) -> tuple:
        """``(status, retry_at)`` of an attempt; ``failed_attempts`` counts it too if it
        failed."""
        if outcome.succeeded:
            self.failures, self.succeeded_since = 0, True
            return DeliveryStatus.SUCCEEDED, None
        retry_at = next_attempt_at(failed_attempts, self.now)
        if retry_at:
            return DeliveryStatus.FAILED, retry_at
        self.failures += 1
        return DeliveryStatus.GIVING_UP, None

    def failure_run(self) -> dict:
        """The subscription's change of ``consecutive_failures``."""
        if self.succeeded_since:
            return {"consecutive_failures": self.failures}
        if self.failures:
            return {"consecutive_failures": F("consecutive_failures") + self.failures}
        return {}


# --- Deliveries due again -----------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """What a run holds of a delivery due again: enough to send it, and the due time it
    goes back to if it is released untried."""

    pk: int
    seq: int
    payload: dict
    due_at: object
    leased_until: object = None

    @property
    def webhook_id(self) -> str:
        return message_id(self.payload)

    @property
    def body(self) -> str:
        return body_of(self.payload)


@transaction.atomic
def _claim(subscription_id: int, size: int) -> list[Claimed]:
    """Up to ``size`` deliveries of the subscription due again, oldest due first,
    leased to this run: their ``next_attempt_at`` moves past the time their requests may
    take, so that a run that dies leaves them to fall due again. Two statements
    whatever ``size`` is, one when none is due."""
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


@transaction.atomic
def _record(
    subscription_id: int,
    outcomes: list,
    *,
    released: list[Claimed],
    lease: Lease | None = None,
) -> bool:
    """How a batch of retries went, in one transaction of a few statements: an attempt
    row per request, each delivery's new status and next try (the retry schedule counts
    its attempts), the released ones due again as they were, the subscription's run of
    failures and its hold (``_hold``), and the run's ``lease`` renewed. Returns whether
    the lease was still the run's (what went is recorded either way). A delivery
    deleted meanwhile (with its subscription) is skipped."""
    claimed = [delivery for delivery, _, _ in outcomes] + released
    current = {
        pk: (attempts, schedule_start)
        for pk, attempts, schedule_start in WebhookDelivery.objects.select_for_update()
        .filter(pk__in=[delivery.pk for delivery in claimed])
        .order_by("pk")
        .values_list("pk", "attempts", "schedule_start")
    }
    now = timezone.now()
    attempts, changes, judged, tried = [], defaultdict(list), _Judged(now), []
    for delivery, outcome, at in outcomes:
        if delivery.pk not in current:
            continue
        done, schedule_start = current[delivery.pk]
        number = done + 1
        status, retry_at = judged.attempt(outcome, failed_attempts=number - schedule_start)
        tried.append((outcome, retry_at))
        attempts.append(_attempt_row(delivery.pk, number, outcome, at, retry_at))
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
        # Only while still this run's: a lease that ran out may be another's now.
        WebhookDelivery.objects.filter(
            pk__in=[delivery.pk for delivery in released],
            next_attempt_at=released[0].leased_until,
        ).update(
            next_attempt_at=_per_row(
                "next_attempt_at", [(delivery.pk, delivery.due_at) for delivery in released]
            ),
            updated_at=now,
        )
    failure_run = judged.failure_run()
    hold = _hold(tried, now) if tried else {}
    subscriptions = WebhookSubscription.objects.filter(pk=subscription_id)
    kept = True
    if lease is not None:
        renewed = now + lease_duration()
        kept = bool(
            subscriptions.filter(sending_until=lease.until).update(
                **failure_run, **hold, sending_until=renewed
            )
        )
        if kept:
            lease.until, lease.held_until, failure_run = renewed, hold.get("held_until"), {}
    elif hold:
        failure_run.update(hold)
    if failure_run:  # the attempts happened; a hold is only the run's that holds the lease
        subscriptions.update(**failure_run)
    if judged.failures:
        _disable_if_failing(subscription_id)
    return kept


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


# --- Switching a failing subscription off ---------------------------------------------------


def _disable_if_failing(subscription_id: int) -> None:
    """Past ``WEBHOOK_DISABLE_AFTER_FAILURES`` deliveries given up in a row, the
    subscription is disabled. Caller is in a transaction."""
    failures = (
        WebhookSubscription.objects.filter(pk=subscription_id)
        .values_list("consecutive_failures", flat=True)
        .first()
    )
    if failures is not None and failures >= settings.WEBHOOK_DISABLE_AFTER_FAILURES:
        _disable(subscription_id, f"{failures} deliveries in a row failed every retry.")


def _disable(subscription_id: int, reason: str) -> None:
    """Switch the subscription off, and say so in the audit log; the events after its
    cursor stay in the log for when it is switched on again. Caller is in a
    transaction."""
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription_id)
    if not subscription.is_active:
        return
    subscription.is_active = False
    subscription.disabled_at = timezone.now()
    subscription.disabled_reason = reason[:200]
    subscription.save(update_fields=["is_active", "disabled_at", "disabled_reason", "updated_at"])
    audit_subscription(
        subscription,
        "webhook.disable",
        before={"is_active": True},
        after={
            "is_active": False,
            "consecutive_failures": subscription.consecutive_failures,
            "reason": subscription.disabled_reason,
        },
        actor=None,
    )


# --- Sending one again by hand -------------------------------------------------------------


def delivery_redeliver(*, delivery: WebhookDelivery, actor) -> WebhookDelivery:
    """Send a delivery again now (or, while its subscription is held, when the hold
    ends), whatever became of it, with a fresh retry schedule; the attempts so far stay
    in its log."""
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
