"""Every event reaches a subscribed receiver, signed so that it verifies with the
subscription's secret (both secrets during a rotation), at least once: after the
receiver was down for ten minutes too, and for events whose signal was lost. The events
are those real stock changes write (``stock_changes``)."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditEvent, AuditOutboxEntry
from events.models import (
    DeliveryStatus,
    EventType,
    StockEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from events.webhooks import client
from events.webhooks import receivers as webhook_receivers
from events.webhooks.services import (
    delivery,
    delivery_redeliver,
    subscription_create,
    subscription_deliver,
    subscription_rotate_secret,
    subscription_update,
    webhooks_sweep,
)
from events.webhooks.services.delivery import CLAIM_SIZE
from stock.services import stock_receive
from tests.concurrency import run_together
from tests.factories import ProductFactory, StoreFactory, UserFactory

from .conftest import Receiver, time_passes

pytestmark = pytest.mark.django_db


@pytest.fixture
def store():
    return StoreFactory(code="berlin-01")


def subscribe(store, receiver, **fields) -> WebhookSubscription:
    return subscription_create(
        store=store,
        url=receiver.url,
        event_types=fields.pop("event_types", []),
        actor=None,
        **fields,
    )


def test_every_event_arrives_signed_with_the_fields_of_the_events_api(
    webhook_settings, receiver, store, stock_changes
):
    subscription = subscribe(store, receiver)

    events = [stock_changes.receive(store, n + 1) for n in range(5)]

    assert receiver.seqs() == [event.seq for event in events]
    for message, event in zip(receiver.received, events, strict=True):
        body = message.verified_with(subscription.secret)
        assert message.webhook_id == f"berlin-01:{event.seq}"
        assert body == {
            "store": "berlin-01",
            "seq": event.seq,
            "type": event.type,
            "sku": "HOOKED",
            "on_hand": event.on_hand,
            "reserved": event.reserved,
            "available": event.available,
            "reorder_point": event.reorder_point,
            "version": event.version,
            "at": event.at.isoformat().replace("+00:00", "Z"),
        }
        assert message.headers["webhook-signature"].count("v1,") == 1
    deliveries = WebhookDelivery.objects.filter(subscription=subscription)
    assert {d.status for d in deliveries} == {DeliveryStatus.SUCCEEDED}
    assert [d.attempts for d in deliveries] == [1] * 5
    assert WebhookAttempt.objects.filter(succeeded=True, response_code=204).count() == 5


def test_a_subscription_gets_only_the_types_it_chose_and_only_events_after_it_began(
    webhook_settings, receiver, store, stock_changes
):
    elsewhere = StoreFactory(code="hamburg-01")
    stock_changes.receive(store, 3)
    stock_changes.receive(elsewhere, 3)
    subscribe(store, receiver, event_types=[EventType.OUT])

    changed = stock_changes.receive(store, 2)
    out = stock_changes.purchase(store, 5)
    other_store = stock_changes.purchase(elsewhere, 3)

    assert (changed.type, out.type, other_store.type) == (EventType.CHANGED, *[EventType.OUT] * 2)
    assert receiver.seqs() == [out.seq]
    assert WebhookDelivery.objects.count() == 1


def test_during_a_rotation_both_secrets_sign_until_the_grace_period_ends(
    webhook_settings, receiver, store, stock_changes
):
    old_secret = subscribe(store, receiver).secret
    subscription = subscription_rotate_secret(
        subscription=WebhookSubscription.objects.get(), actor=None
    )

    stock_changes.receive(store)
    WebhookSubscription.objects.update(previous_secret_expires_at=timezone.now())
    stock_changes.receive(store)

    during, after = receiver.received
    assert subscription.secret != old_secret
    assert during.headers["webhook-signature"].count("v1,") == 2
    assert during.verified_with(old_secret) == during.verified_with(subscription.secret)
    assert after.verified_with(subscription.secret)["seq"] == 2
    with pytest.raises(Exception, match="No matching signature"):
        after.verified_with(old_secret)


def test_a_receiver_down_for_ten_minutes_gets_every_event_once_it_is_back(
    webhook_settings, receiver, store, stock_changes
):
    """The default retry schedule, with time passing by moving every scheduled attempt
    earlier. Events keep coming while it is down, some of them with no signal at all
    (a process that died after its commit): the sweep finds those by the cursor. While
    it is down an event it missed holds the others in the log until its next try (at
    most WEBHOOK_HOLD_MAX_SECONDS), so only those it missed are deliveries."""
    subscription = subscribe(store, receiver)
    receiver.stop()
    sent = []
    for minute in range(10):
        event = stock_changes.receive(store, signal=bool(minute % 3))  # else the signal was lost
        sent.append(event.seq)
        for _ in range(2):
            time_passes(30)
    assert receiver.received == []
    missed = WebhookDelivery.objects.all()
    assert {(d.status, d.last_response_code) for d in missed} == {(DeliveryStatus.FAILED, None)}
    assert not WebhookAttempt.objects.filter(succeeded=True).exists()
    subscription.refresh_from_db()
    assert subscription.held_until is not None

    receiver.start()
    for _ in range(12):  # up to one hour more, past the longest delay due by then
        time_passes(300)

    by_id = {message.webhook_id: message for message in receiver.received}
    assert sorted(by_id) == sorted(f"berlin-01:{seq}" for seq in sent)
    for message in by_id.values():
        assert message.verified_with(subscription.secret)["seq"] in sent
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {
        DeliveryStatus.SUCCEEDED
    }


def test_failed_attempts_are_logged_with_the_next_try_and_back_off(
    webhook_settings, receiver, store, stock_changes
):
    webhook_settings.WEBHOOK_RETRY_SCHEDULE = [60, 600]
    webhook_settings.WEBHOOK_RETRY_JITTER = 0
    subscribe(store, receiver)
    receiver.status = 503

    stock_changes.receive(store)
    time_passes(60)
    time_passes(600)
    time_passes(6000)  # nothing is left to try

    delivery = WebhookDelivery.objects.get()
    attempts = list(delivery.log.order_by("number"))
    assert len(receiver.received) == 3
    assert delivery.status == DeliveryStatus.GIVING_UP
    assert (delivery.attempts, delivery.last_response_code, delivery.next_attempt_at) == (
        3,
        503,
        None,
    )
    assert [a.response_code for a in attempts] == [503, 503, 503]
    assert attempts[-1].next_attempt_at is None
    gaps = [(a.next_attempt_at - a.at).total_seconds() for a in attempts[:2]]
    assert gaps == pytest.approx([60, 600], abs=2)
    assert "HTTP 503" in delivery.last_error


def test_each_attempt_logs_how_long_the_receiver_took(
    webhook_settings, receiver, store, stock_changes
):
    subscribe(store, receiver)
    receiver.hold.clear()

    def answer_after_300_ms():
        while receiver.waiting == 0:
            time.sleep(0.01)
        time.sleep(0.3)
        receiver.hold.set()

    threading.Thread(target=answer_after_300_ms, daemon=True).start()

    stock_changes.receive(store)

    delivery, attempt = WebhookDelivery.objects.get(), WebhookAttempt.objects.get()
    assert attempt.succeeded and attempt.response_code == 204
    assert 300 <= attempt.duration_ms < 5000
    assert delivery.last_duration_ms == attempt.duration_ms


def test_the_default_schedule_backs_off_for_more_than_a_day_before_giving_up(
    webhook_settings, receiver, store, stock_changes
):
    """The retry schedule as deployed (WEBHOOK_RETRY_SCHEDULE and its jitter left as
    they are), walked attempt by attempt: each wait longer than the one before, and the
    last try more than 24 hours after the first, whatever the jitter drew."""
    subscribe(store, receiver)
    receiver.status = 503

    stock_changes.receive(store)
    while (due := WebhookDelivery.objects.get().next_attempt_at) is not None:
        time_passes((due - timezone.now()).total_seconds() + 1)

    delivery = WebhookDelivery.objects.get()
    attempts = list(delivery.log.order_by("number"))
    waits = [(a.next_attempt_at - a.at).total_seconds() for a in attempts[:-1]]
    assert delivery.status == DeliveryStatus.GIVING_UP
    assert len(receiver.received) == len(attempts) == len(waits) + 1 > 2
    assert waits == sorted(set(waits))  # each longer than the one before
    assert sum(waits) > 24 * 60 * 60


def test_a_redirect_is_not_followed(webhook_settings, receiver, store, stock_changes):
    subscribe(store, receiver)
    receiver.status = 302

    stock_changes.receive(store)

    delivery = WebhookDelivery.objects.get()
    assert len(receiver.received) == 1
    assert (delivery.status, delivery.last_response_code) == (DeliveryStatus.FAILED, 302)


def test_after_a_run_of_deliveries_given_up_the_subscription_is_disabled_and_audited(
    webhook_settings, receiver, store, stock_changes
):
    webhook_settings.WEBHOOK_RETRY_SCHEDULE = []  # every failure gives up
    webhook_settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    subscription = subscribe(store, receiver)
    receiver.status = 500

    stock_changes.receive(store)
    stock_changes.receive(store)
    subscription.refresh_from_db()
    assert (subscription.is_active, subscription.consecutive_failures) == (True, 2)

    stock_changes.receive(store)
    stock_changes.receive(store)  # not sent: the subscription is off

    subscription.refresh_from_db()
    assert (subscription.is_active, subscription.consecutive_failures) == (False, 3)
    assert subscription.disabled_at is not None and "3 deliveries" in subscription.disabled_reason
    assert len(receiver.received) == 3
    audited = [
        *AuditOutboxEntry.objects.filter(action="webhook.disable").values("object_id", "store_id"),
        *AuditEvent.objects.filter(action="webhook.disable").values("object_id", "store_id"),
    ]
    assert audited == [{"object_id": str(subscription.pk), "store_id": store.pk}]


def test_a_success_ends_the_run_of_failures_and_switching_on_again_resumes_delivery(
    webhook_settings, receiver, store, stock_changes
):
    webhook_settings.WEBHOOK_RETRY_SCHEDULE = []
    webhook_settings.WEBHOOK_DISABLE_AFTER_FAILURES = 2
    subscription = subscribe(store, receiver)
    receiver.status = 500
    stock_changes.receive(store)
    receiver.status = 200
    stock_changes.receive(store)
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 0

    receiver.status = 500
    stock_changes.receive(store)
    stock_changes.receive(store)
    missed = stock_changes.receive(store)
    receiver.status = 200
    with stock_changes.capture_on_commit(execute=True):  # no sweep: switching on sends
        subscription_update(subscription=subscription, actor=UserFactory(), is_active=True)

    subscription.refresh_from_db()
    assert (subscription.is_active, subscription.consecutive_failures) == (True, 0)
    assert receiver.seqs()[-1] == missed.seq


def test_a_delivery_given_up_is_sent_again_on_redelivery(
    webhook_settings, receiver, store, stock_changes, django_capture_on_commit_callbacks
):
    webhook_settings.WEBHOOK_RETRY_SCHEDULE = []
    subscription = subscribe(store, receiver)
    receiver.status = 500
    stock_changes.receive(store)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.GIVING_UP

    receiver.status = 200
    with django_capture_on_commit_callbacks(execute=True):
        delivery_redeliver(delivery=delivery, actor=UserFactory())

    delivery.refresh_from_db()
    first, second = receiver.received
    assert first.webhook_id == second.webhook_id == delivery.webhook_id
    assert second.verified_with(subscription.secret)["seq"] == delivery.seq
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 2)


def test_a_run_whose_worker_died_leaves_the_subscription_to_the_next_once_its_lease_ran_out(
    webhook_settings, receiver, store, stock_changes
):
    subscription = subscribe(store, receiver)
    delivery._lease(subscription.pk)  # ... and the worker dies
    event = stock_changes.receive(store)  # its message finds the subscription held
    webhooks_sweep()
    assert receiver.received == []
    subscription.refresh_from_db()
    assert subscription.sending_until > timezone.now() + timedelta(seconds=60)

    time_passes(120)

    assert receiver.seqs() == [event.seq]


def test_an_event_committed_while_a_run_sends_is_sent_by_that_run(
    webhook_settings, receiver, store, stock_changes, monkeypatch
):
    """Its message found the subscription held (here: no message at all, the worst
    case) and ended at once; the run, letting go, looks again and sends it."""
    subscription = subscribe(store, receiver)
    first = stock_changes.receive(store, signal=False)
    real_send, late = delivery._send, []

    def commit_then_send(session, subscription, items):
        if not late:  # after the run's last read of the log, before it lets go
            stock_receive(store=store, product=stock_changes.product, quantity=1)
            late.append(StockEvent.objects.filter(store=store).order_by("-seq").first())
        return real_send(session, subscription, items)

    monkeypatch.setattr(delivery, "_send", commit_then_send)

    assert subscription_deliver(subscription.pk) == 2
    assert receiver.seqs() == [first.seq, late[0].seq]


def test_with_a_worker_the_run_leaves_what_came_late_to_a_message_of_its_own(
    webhook_settings, receiver, store, stock_changes, monkeypatch
):
    """The same, with a broker: the run does not go on, it wakes the subscription
    again, coalesced with whatever comes next."""
    webhook_settings.CELERY_TASK_ALWAYS_EAGER = False
    subscription = subscribe(store, receiver)
    first = stock_changes.receive(store, signal=False)
    real_send, woken = delivery._send, []

    def commit_then_send(session, subscription, items):
        if not woken:
            stock_receive(store=store, product=stock_changes.product, quantity=1)
        return real_send(session, subscription, items)

    monkeypatch.setattr(delivery, "_send", commit_then_send)
    monkeypatch.setattr(
        delivery, "send_deliver", lambda pk, countdown=0: woken.append((pk, countdown))
    )

    assert subscription_deliver(subscription.pk) == 1
    assert receiver.seqs() == [first.seq]
    assert woken == [(subscription.pk, webhook_settings.WEBHOOK_COALESCE_SECONDS)]


def test_a_run_that_sent_nothing_still_looks_for_what_came_meanwhile(
    webhook_settings, receiver, store, stock_changes, monkeypatch
):
    """A run that found nothing to send, while an event committed and its message
    found the subscription taken: letting go, it looks again."""
    subscription = subscribe(store, receiver)
    stock_changes.product = ProductFactory(sku="HOOKED")
    real_run, late = delivery._run, []

    def nothing_then_a_commit(lease, budget):
        if late:
            return real_run(lease, budget)
        stock_receive(store=store, product=stock_changes.product, quantity=1)
        late.append(StockEvent.objects.get(store=store))
        return 0, False

    monkeypatch.setattr(delivery, "_run", nothing_then_a_commit)

    assert subscription_deliver(subscription.pk) == 1
    assert receiver.seqs() == [late[0].seq]


def test_a_batch_of_deliveries_shares_one_connection_and_a_few_statements(
    webhook_settings, receiver, store, stock_changes, record_statements
):
    """Forty events whose signals were lost, delivered by one sweep: one kept-alive
    connection, and a fixed number of statements (claim, record), not some per event."""
    subscribe(store, receiver)
    for _ in range(40):
        stock_changes.receive(store, signal=False)

    with record_statements() as statements:
        webhooks_sweep()

    assert len(receiver.seqs()) == 40
    assert receiver.connections == 1
    # The sweep's question, then the run: on PostgreSQL two statements (taken with the
    # events, then the record that lets go: ``services/sql.py``); elsewhere the lease (2:
    # taken, the subscription read), the events, the record (3: the cursor, the
    # deliveries, their attempts), letting go and looking for more (2). Savepoints stand
    # in for BEGIN and COMMIT here.
    sent = [s.sql for s in statements if not s.sql.startswith(("SAVEPOINT", "RELEASE"))]
    expected = 1 + (2 if connection.vendor == "postgresql" else 8)
    assert len(sent) == expected, "\n".join(sql[:100] for sql in sent)
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {
        (DeliveryStatus.SUCCEEDED, 1)
    }
    assert WebhookAttempt.objects.filter(succeeded=True).count() == 40


def test_the_events_read_with_the_lease_are_those_the_log_gives_byte_for_byte(
    webhook_settings, receiver, store, stock_changes
):
    """On PostgreSQL the lease reads a run's first batch as JSON (``sql.lease``): the
    bodies it makes are those of the events read on their own, to the microsecond of
    ``at``, and it reads at most CLAIM_SIZE of them."""
    subscription = subscribe(store, receiver)
    stock_changes.receive(store, 3, signal=False)
    stock_changes.purchase(store, 3, signal=False)  # to 0: stock.out
    for _ in range(CLAIM_SIZE):
        stock_changes.receive(store, signal=False)

    lease = delivery._lease(subscription.pk)

    read_alone = delivery._events_after(lease.subscription, CLAIM_SIZE)
    if connection.vendor == "postgresql":
        read_with_lease = delivery.unsent_of_rows(store.code, lease.first_events)
        assert read_with_lease == read_alone
        assert [event.body for event in read_with_lease] == [e.body for e in read_alone]
    else:
        assert lease.first_events is None  # read by the run, as read_alone
    assert len(read_alone) == CLAIM_SIZE


def test_a_run_of_several_batches_sends_all_in_order_and_lets_go_with_its_last(
    webhook_settings, receiver, store, stock_changes, record_statements
):
    """The first batch comes with the lease, the next is read after it, and the last
    record lets go: on PostgreSQL five statements for two batches (the lease, a record,
    the subscription read again, the events, the last record)."""
    subscription = subscribe(store, receiver)
    seqs = [stock_changes.receive(store, signal=False).seq for _ in range(CLAIM_SIZE + 10)]

    with record_statements() as statements:
        assert subscription_deliver(subscription.pk) == CLAIM_SIZE + 10

    assert receiver.seqs() == seqs
    subscription.refresh_from_db()
    assert (subscription.sent_seq, subscription.sending_until) == (seqs[-1], None)
    if connection.vendor == "postgresql":
        sent = [s.sql for s in statements if not s.sql.startswith(("SAVEPOINT", "RELEASE"))]
        assert len(sent) == 5, "\n".join(sql[:100] for sql in sent)


@pytest.mark.postgresql("the lease waits on the row lock of a run letting go")
@pytest.mark.django_db(transaction=True)
def test_a_lease_tried_while_a_run_lets_go_waits_for_it_and_reads_the_event_that_came(
    webhook_settings, receiver, monkeypatch
):
    """A run's letting go has not committed when an event commits and that event's
    message tries the lease. The letting go read the log before the event, so only the
    message can send it: its lease waits for the run's commit instead of finding the
    subscription held, and reads the event."""
    monkeypatch.setattr(webhook_receivers, "send_dispatch", lambda store_ids: None)
    store, product = StoreFactory(), ProductFactory()
    subscription = subscribe(store, receiver)
    holding = delivery._lease(subscription.pk)
    letting_go, event_committed = threading.Event(), threading.Event()

    def run_letting_go():
        with transaction.atomic():
            WebhookSubscription.objects.filter(
                pk=subscription.pk, sending_until=holding.until
            ).update(sending_until=None)
            letting_go.set()
            event_committed.wait(10)
            time.sleep(0.3)  # the lease below tries meanwhile

    def event_then_its_lease():
        letting_go.wait(10)
        stock_receive(store=store, product=product, quantity=1)
        event_committed.set()
        started = time.monotonic()
        lease = delivery._lease(subscription.pk)
        return lease, time.monotonic() - started

    _, (lease, waited) = run_together([run_letting_go, event_then_its_lease])

    assert lease is not None, "the lease found the subscription held and gave up"
    assert waited >= 0.2  # it waited for the run's commit
    event = StockEvent.objects.get(store=store)
    assert [row[0] for row in lease.first_events] == [event.seq]


def test_a_held_subscription_s_lease_reads_no_event(
    webhook_settings, receiver, store, stock_changes
):
    """Nothing is sent to it before the hold ends: the lease does not read the log."""
    subscription = subscribe(store, receiver)
    stock_changes.receive(store, signal=False)
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        held_until=timezone.now() + timedelta(minutes=1)
    )

    lease = delivery._lease(subscription.pk)

    assert lease.first_events == ([] if connection.vendor == "postgresql" else None)
    assert subscription_deliver(subscription.pk) == 0


def test_a_run_of_exactly_one_full_batch_lets_go_once_it_found_nothing_more(
    webhook_settings, receiver, store, stock_changes
):
    """CLAIM_SIZE events fill the first batch: the run looks again, finds nothing, and
    lets go."""
    subscription = subscribe(store, receiver)
    seqs = [stock_changes.receive(store, signal=False).seq for _ in range(CLAIM_SIZE)]

    assert subscription_deliver(subscription.pk) == CLAIM_SIZE

    assert receiver.seqs() == seqs
    subscription.refresh_from_db()
    assert (subscription.sent_seq, subscription.sending_until) == (seqs[-1], None)


def test_a_run_that_spent_its_budget_lets_go_and_wakes_the_subscription_for_the_rest(
    webhook_settings, receiver, store, stock_changes, monkeypatch
):
    """Its last record let go of the subscription and found the events past the
    budget: with a broker, the rest goes with a message of its own."""
    webhook_settings.CELERY_TASK_ALWAYS_EAGER = False
    subscription = subscribe(store, receiver)
    seqs = [stock_changes.receive(store, signal=False).seq for _ in range(5)]
    woken = []
    monkeypatch.setattr(
        delivery, "send_deliver", lambda pk, countdown=0: woken.append((pk, countdown))
    )

    assert subscription_deliver(subscription.pk, limit=3) == 3

    assert receiver.seqs() == seqs[:3]
    subscription.refresh_from_db()
    assert (subscription.sent_seq, subscription.sending_until) == (seqs[2], None)
    assert woken == [(subscription.pk, webhook_settings.WEBHOOK_COALESCE_SECONDS)]


def test_a_receiver_that_does_not_answer_holds_the_events_after_the_one_it_missed(
    webhook_settings, receiver, store, stock_changes
):
    """No answer at all (here: nothing listens) ends the run and holds the subscription
    until that event's next try: one attempt per try, not one per event; the others
    wait in the log, and go in order once it answers."""
    webhook_settings.WEBHOOK_RETRY_JITTER = 0
    subscription = subscribe(store, receiver)
    receiver.stop()
    seqs = [stock_changes.receive(store, signal=False).seq for _ in range(5)]

    webhooks_sweep()
    webhooks_sweep()  # before the next try: nothing is attempted

    [first] = WebhookDelivery.objects.all()
    assert (first.seq, first.status, first.attempts, first.last_response_code) == (
        seqs[0],
        DeliveryStatus.FAILED,
        1,
        None,
    )
    assert WebhookAttempt.objects.count() == 1
    subscription.refresh_from_db()
    assert subscription.held_until == first.next_attempt_at > timezone.now()
    assert subscription.sent_seq == seqs[0]

    receiver.start()
    time_passes(webhook_settings.WEBHOOK_RETRY_SCHEDULE[0])

    assert receiver.seqs() == seqs
    subscription.refresh_from_db()
    assert (subscription.held_until, subscription.sent_seq) == (None, seqs[-1])


def test_a_receiver_back_gets_what_waited_within_the_hold_cap_before_the_missed_retry(
    webhook_settings, receiver, store, stock_changes
):
    """The event it missed is retried on its schedule (here in 10 minutes); what came
    after it waits at most WEBHOOK_HOLD_MAX_SECONDS."""
    webhook_settings.WEBHOOK_RETRY_SCHEDULE = [600]
    webhook_settings.WEBHOOK_RETRY_JITTER = 0
    webhook_settings.WEBHOOK_HOLD_MAX_SECONDS = 60
    subscription = subscribe(store, receiver)
    receiver.stop()
    missed, *waiting = [stock_changes.receive(store).seq for _ in range(3)]
    subscription.refresh_from_db()
    assert subscription.held_until == pytest.approx(
        timezone.now() + timedelta(seconds=60), abs=timedelta(seconds=5)
    )

    receiver.start()
    time_passes(30)
    assert receiver.received == []
    time_passes(31)
    assert receiver.seqs() == waiting
    time_passes(600)
    assert receiver.seqs() == [*waiting, missed]
    subscription.refresh_from_db()
    assert subscription.held_until is None


def test_while_held_no_retry_is_attempted_either(webhook_settings, receiver, store, stock_changes):
    """Two deliveries failed with an answer; when they fall due the receiver is gone:
    the first one tried gets no answer and holds the other, which is not tried."""
    webhook_settings.WEBHOOK_RETRY_SCHEDULE = [5, 30]
    webhook_settings.WEBHOOK_RETRY_JITTER = 0
    subscribe(store, receiver)
    receiver.status = 503
    stock_changes.receive(store)
    stock_changes.receive(store)
    receiver.stop()

    time_passes(6)
    webhooks_sweep()
    time_passes(10)

    assert WebhookAttempt.objects.count() == 3  # two answered 503, then one unanswered
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.FAILED}


def test_a_run_stops_once_its_subscription_is_switched_off(
    webhook_settings, receiver, store, stock_changes
):
    """Switched off by its own run of failures (the first batch gives up on 50): the
    second batch is never claimed, let alone sent."""
    webhook_settings.WEBHOOK_RETRY_SCHEDULE = []  # the first failure gives up
    webhook_settings.WEBHOOK_DISABLE_AFTER_FAILURES = 2
    receiver.status = 500
    subscription = subscribe(store, receiver)
    seqs = [stock_changes.receive(store, signal=False).seq for _ in range(60)]

    assert subscription_deliver(subscription.pk) == CLAIM_SIZE

    subscription.refresh_from_db()
    assert not subscription.is_active
    assert len(receiver.received) == WebhookDelivery.objects.count() == CLAIM_SIZE
    assert subscription.sent_seq == seqs[CLAIM_SIZE - 1]


def test_a_run_stops_when_its_url_changed_and_the_next_run_sends_there(
    webhook_settings, receiver, store, stock_changes, monkeypatch
):
    """A batch is sent where the run found the subscription; the next batch goes to
    where it points then."""
    elsewhere = Receiver()
    elsewhere.start()
    try:
        subscription = subscribe(store, receiver)
        for _ in range(3):
            stock_changes.receive(store, signal=False)
        monkeypatch.setattr(delivery, "CLAIM_SIZE", 1)
        real_record = delivery._record_sent

        def record_then_move(*args, **kwargs):
            renewed = real_record(*args, **kwargs)
            WebhookSubscription.objects.filter(pk=subscription.pk).update(url=elsewhere.url)
            return renewed

        monkeypatch.setattr(delivery, "_record_sent", record_then_move)
        assert subscription_deliver(subscription.pk) == 3

        assert (len(receiver.received), len(elsewhere.received)) == (1, 2)
    finally:
        elsewhere.stop()


def test_a_batch_records_what_went_within_its_time_and_the_next_sends_the_rest(
    webhook_settings, receiver, store, stock_changes, monkeypatch
):
    """Past BATCH_SECONDS the batch stops: its attempts are recorded (a worker dying
    now re-sends none of them) and the rest goes in the next batch."""
    monkeypatch.setattr(delivery, "BATCH_SECONDS", 0)
    subscribe(store, receiver)
    for _ in range(4):
        stock_changes.receive(store, signal=False)
    real_record, batches = delivery._record_sent, []

    def counted(lease, outcomes, **kwargs):
        batches.append(len(outcomes))
        return real_record(lease, outcomes, **kwargs)

    monkeypatch.setattr(delivery, "_record_sent", counted)

    assert subscription_deliver(WebhookSubscription.objects.get().pk) == 4
    assert batches == [1, 1, 1, 1]

    assert len(receiver.seqs()) == 4
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {
        (DeliveryStatus.SUCCEEDED, 1)
    }


def test_a_released_delivery_another_worker_took_meanwhile_stays_theirs(
    webhook_settings, receiver, store, stock_changes
):
    """A retry's lease that ran out may be another run's claim by the time this one
    records: releasing must not turn that claim back."""
    subscribe(store, receiver)
    receiver.status = 500
    stock_changes.receive(store)  # failed: due again later
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    [claimed] = delivery._claim(WebhookSubscription.objects.get().pk, 10)
    theirs = timezone.now() + timedelta(minutes=7)
    WebhookDelivery.objects.filter(pk=claimed.pk).update(next_attempt_at=theirs)

    delivery._record(WebhookSubscription.objects.get().pk, [], released=[claimed])

    assert WebhookDelivery.objects.get(pk=claimed.pk).next_attempt_at == theirs


@pytest.mark.parametrize("release", [False, True], ids=["renewing", "letting-go"])
def test_a_batch_recorded_after_its_run_lost_the_subscription_writes_nothing(
    webhook_settings, receiver, store, stock_changes, release
):
    """Another run took the subscription meanwhile: the cursor stays, no delivery or
    attempt is written (that run sends the events again), and a run's last batch lets
    go of nothing."""
    subscription = subscribe(store, receiver)
    event = stock_changes.receive(store, signal=False)
    lease = delivery._lease(subscription.pk)
    theirs = timezone.now() + timedelta(minutes=5)
    WebhookSubscription.objects.filter(pk=subscription.pk).update(sending_until=theirs)
    [unsent] = delivery._events_after(lease.subscription, 10)

    with pytest.raises(delivery.LeaseLost):
        delivery._record_sent(
            lease,
            [(unsent, client.Outcome(204, 3), timezone.now())],
            sent_up_to=unsent.seq,
            release=release,
        )

    subscription.refresh_from_db()
    assert (subscription.sent_seq, subscription.sending_until) == (event.seq - 1, theirs)
    assert not WebhookDelivery.objects.exists() and not WebhookAttempt.objects.exists()


def test_a_new_url_takes_the_subscription_from_a_run_still_sending_to_the_old_one(
    webhook_settings, receiver, store, stock_changes
):
    """The old URL's run (here: one that took the subscription and went silent) would
    hold it for its lease; the new URL gets the events at once."""
    elsewhere = Receiver()
    elsewhere.start()
    try:
        subscription = subscribe(store, receiver)
        event = stock_changes.receive(store, signal=False)
        delivery._lease(subscription.pk)

        with stock_changes.capture_on_commit(execute=True):
            subscription_update(subscription=subscription, actor=UserFactory(), url=elsewhere.url)

        assert (receiver.seqs(), elsewhere.seqs()) == ([], [event.seq])
    finally:
        elsewhere.stop()


def test_an_event_given_up_unanswered_counts_as_a_failure_and_holds_for_the_cap(
    webhook_settings, receiver, store, stock_changes
):
    webhook_settings.WEBHOOK_RETRY_SCHEDULE = []  # the first failure gives up
    subscription = subscribe(store, receiver)
    receiver.stop()

    missed = stock_changes.receive(store)
    waiting = stock_changes.receive(store)

    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 1
    assert subscription.held_until == pytest.approx(
        timezone.now() + timedelta(seconds=webhook_settings.WEBHOOK_HOLD_MAX_SECONDS),
        abs=timedelta(seconds=5),
    )
    assert WebhookDelivery.objects.get().seq == missed.seq
    assert subscription.sent_seq == missed.seq < waiting.seq


def test_with_a_worker_a_hold_wakes_the_subscription_when_it_ends(
    webhook_settings, receiver, store, stock_changes, monkeypatch
):
    webhook_settings.CELERY_TASK_ALWAYS_EAGER = False
    webhook_settings.WEBHOOK_RETRY_JITTER = 0
    subscription = subscribe(store, receiver)
    receiver.stop()
    stock_changes.receive(store, signal=False)
    woken = []
    monkeypatch.setattr(
        delivery, "send_deliver", lambda pk, countdown=0: woken.append((pk, countdown))
    )

    assert subscription_deliver(subscription.pk) == 1

    [(pk, countdown)] = woken
    first_retry = webhook_settings.WEBHOOK_RETRY_SCHEDULE[0]
    assert pk == subscription.pk and first_retry - 1 < countdown <= first_retry
