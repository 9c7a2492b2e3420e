"""The deliveries' retention: a delivery finished (succeeded, given up) more than
WEBHOOK_DELIVERY_RETENTION_DAYS ago goes with its attempts, by the daily prune (beat's
task, ``manage.py prune_events``); one still due stays, however old."""

import io
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from events.tasks import prune_stock_events
from events.webhooks.retention import webhook_deliveries_prune
from events.webhooks.services import delivery_redeliver, subscription_create
from tests.app_role import as_owner
from tests.factories import StockEventFactory, StoreFactory, UserFactory

from .conftest import commit_events

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture
def subscription(berlin):
    return subscription_create(
        store=berlin, url="https://hooks.example.com/in", event_types=[], actor=None
    )


def delivery(subscription, status, *, finished_days_ago: float, attempts: int = 1):
    """A delivery of ``status`` with its attempts, last changed that many days ago; a
    due one has its next try then."""
    seq = WebhookDelivery.objects.filter(subscription=subscription).count() + 1
    when = timezone.now() - finished_days_ago * DAY
    due = status in (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
    made = WebhookDelivery.objects.create(
        subscription=subscription,
        store=subscription.store,
        seq=seq,
        event_type="stock.changed",
        payload={"store": subscription.store.code, "seq": seq},
        status=status,
        attempts=attempts,
        next_attempt_at=when if due else None,
    )
    for number in range(1, attempts + 1):
        WebhookAttempt.objects.create(
            delivery=made,
            number=number,
            succeeded=status == DeliveryStatus.SUCCEEDED and number == attempts,
            duration_ms=10,
            at=when,
        )
    WebhookDelivery.objects.filter(pk=made.pk).update(updated_at=when)  # auto_now aside
    return made


def left() -> dict[int, int]:
    """{delivery id: its attempts left}."""
    return {
        made.pk: WebhookAttempt.objects.filter(delivery=made).count()
        for made in WebhookDelivery.objects.all()
    }


# --- What goes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, finished_days_ago, pruned",
    [
        (DeliveryStatus.SUCCEEDED, 31, True),
        (DeliveryStatus.GIVING_UP, 31, True),
        (DeliveryStatus.SUCCEEDED, 29, False),  # within the retention
        (DeliveryStatus.GIVING_UP, 29, False),
        (DeliveryStatus.PENDING, 400, False),  # due: never pruned, however old
        (DeliveryStatus.FAILED, 400, False),
    ],
)
def test_finished_deliveries_past_the_retention_go_with_their_attempts(
    subscription, status, finished_days_ago, pruned
):
    kept = delivery(subscription, DeliveryStatus.SUCCEEDED, finished_days_ago=1, attempts=2)
    judged = delivery(subscription, status, finished_days_ago=finished_days_ago, attempts=3)

    gone = webhook_deliveries_prune(older_than=30 * DAY)

    assert gone == ((1, 3) if pruned else (0, 0))
    assert left() == ({kept.pk: 2} if pruned else {kept.pk: 2, judged.pk: 3})


def test_a_delivery_redelivered_lately_is_kept_until_it_finished_long_enough_ago(
    webhook_settings, receiver, berlin, django_capture_on_commit_callbacks
):
    """Through the real service: given up long ago, sent again now and delivered, its
    retention starts again from its last attempt."""
    webhook_settings.WEBHOOK_RETRY_SCHEDULE = []
    subscription_create(store=berlin, url=receiver.url, event_types=[], actor=None)
    receiver.status = 500
    commit_events(StockEventFactory(store=berlin))
    WebhookDelivery.objects.update(updated_at=timezone.now() - 40 * DAY)
    receiver.status = 204
    with django_capture_on_commit_callbacks(execute=True):
        delivery_redeliver(delivery=WebhookDelivery.objects.get(), actor=UserFactory())

    assert webhook_deliveries_prune(older_than=30 * DAY) == (0, 0)
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED
    assert WebhookAttempt.objects.count() == 2


def test_each_batch_is_a_transaction_of_its_own(subscription):
    """5 deliveries in batches of 2: 2, 2, 1; the last, short, ends it."""
    for _ in range(5):
        delivery(subscription, DeliveryStatus.SUCCEEDED, finished_days_ago=40)

    with CaptureQueriesContext(connection) as queries:
        gone = webhook_deliveries_prune(older_than=30 * DAY, batch_size=2)

    savepoints = [query["sql"] for query in queries if query["sql"].startswith("SAVEPOINT")]
    assert gone == (5, 5)
    assert len(savepoints) == 3
    assert left() == {}


@pytest.mark.postgresql("row locks: SQLite runs one writer at a time")
@pytest.mark.django_db(transaction=True)
def test_a_delivery_someone_holds_is_left_and_one_made_due_meanwhile_is_kept(berlin):
    """A manager redelivering it holds its row: the prune skips it rather than wait; it is
    due once that commits, and stays."""
    subscription = subscription_create(
        store=berlin, url="https://hooks.example.com/in", event_types=[], actor=None
    )
    held = delivery(subscription, DeliveryStatus.GIVING_UP, finished_days_ago=40)
    other = delivery(subscription, DeliveryStatus.GIVING_UP, finished_days_ago=40)
    locked, release = threading.Event(), threading.Event()

    def redeliver():
        try:
            with transaction.atomic():
                row = WebhookDelivery.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(timeout=30)
                row.status, row.next_attempt_at = DeliveryStatus.PENDING, timezone.now()
                row.save()
        finally:
            connection.close()

    thread = threading.Thread(target=redeliver)
    thread.start()
    try:
        assert locked.wait(timeout=30)
        gone_while_held = webhook_deliveries_prune(older_than=30 * DAY)
    finally:
        release.set()
        thread.join(timeout=30)
    gone_after = webhook_deliveries_prune(older_than=30 * DAY)

    assert (gone_while_held, gone_after) == ((1, 1), (0, 0))
    assert list(WebhookDelivery.objects.values_list("pk", "status")) == [
        (held.pk, DeliveryStatus.PENDING)
    ]
    assert not WebhookDelivery.objects.filter(pk=other.pk).exists()


# --- Who prunes, when -------------------------------------------------------------------


def test_beat_s_daily_prune_takes_them_with_the_setting(subscription, settings):
    settings.WEBHOOK_DELIVERY_RETENTION_DAYS = 7
    old = delivery(subscription, DeliveryStatus.SUCCEEDED, finished_days_ago=8, attempts=2)
    recent = delivery(subscription, DeliveryStatus.GIVING_UP, finished_days_ago=6)

    with as_owner():
        pruned = prune_stock_events()

    assert pruned == {"events": 0, "deliveries": 1, "attempts": 2}
    assert left() == {recent.pk: 1}
    assert not WebhookDelivery.objects.filter(pk=old.pk).exists()


def command(*args: str) -> str:
    out = io.StringIO()
    with as_owner():
        call_command("prune_events", *args, stdout=out)
    return out.getvalue()


def test_the_command_prunes_them_after_the_events_and_counts_them_in_a_dry_run(subscription):
    delivery(subscription, DeliveryStatus.SUCCEEDED, finished_days_ago=40, attempts=2)
    delivery(subscription, DeliveryStatus.GIVING_UP, finished_days_ago=20, attempts=11)
    delivery(subscription, DeliveryStatus.FAILED, finished_days_ago=90)

    counted = command("--dry-run", "--delivery-days", "10")
    default = command()
    shorter = command("--delivery-days", "10")

    assert counted.splitlines()[1] == (
        "Would prune 2 webhook deliveries finished more than 10 days ago "
        "(dry run: nothing deleted)."
    )
    assert default.splitlines() == [
        "Pruned 0 stock events older than 30 days.",
        "Pruned 1 webhook deliveries finished more than 30 days ago, with their 2 attempts.",
    ]
    assert shorter.splitlines()[1] == (
        "Pruned 1 webhook deliveries finished more than 10 days ago, with their 11 attempts."
    )
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == [DeliveryStatus.FAILED]


def test_other_stores_deliveries_are_pruned_by_the_same_rule(subscription, hamburg):
    elsewhere = subscription_create(
        store=hamburg, url="https://hooks.example.com/hh", event_types=[], actor=None
    )
    delivery(subscription, DeliveryStatus.SUCCEEDED, finished_days_ago=40)
    kept = delivery(elsewhere, DeliveryStatus.SUCCEEDED, finished_days_ago=2)
    delivery(elsewhere, DeliveryStatus.GIVING_UP, finished_days_ago=40)

    assert webhook_deliveries_prune(older_than=30 * DAY) == (2, 2)
    assert left() == {kept.pk: 1}
    assert StoreFactory._meta.model.objects.count() == 2  # stores untouched
