"""manage.py prune_events and beat's daily task: the log keeps STOCK_EVENT_RETENTION_DAYS
of events, deleted in batches, a transaction each; the stores' numbering goes on. (The
webhook deliveries they prune too: ``test_webhooks_retention``.)"""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import StockEvent, StoreEventSequence
from events.services import stock_events_prune
from events.tasks import prune_stock_events
from tests.app_role import as_owner
from tests.factories import StockEventFactory


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


@pytest.fixture
def log(berlin, hamburg):
    """Berlin: 3 events of 40 days ago, 2 of 20, 1 of today; Hamburg: 2 of 40, 1 of
    today. {(store code, seq): age in days}."""
    ages = {}
    for store, days in ((berlin, [40, 40, 40, 20, 20, 0]), (hamburg, [40, 40, 0])):
        for age in days:
            event = StockEventFactory(store=store, at=days_ago(age))
            ages[(store.code, event.seq)] = age
    return ages


def left() -> set[tuple[str, int]]:
    return set(StockEvent.objects.values_list("store__code", "seq"))


def sequences() -> dict[str, int]:
    return dict(StoreEventSequence.objects.values_list("store__code", "last_seq"))


NO_DELIVERIES = (
    "Pruned 0 webhook deliveries finished more than 30 days ago, with their 0 attempts.\n"
)
NO_DELIVERIES_TO_COUNT = (
    "Would prune 0 webhook deliveries finished more than 30 days ago (dry run: nothing deleted).\n"
)


def prune(*args: str) -> str:
    out = io.StringIO()
    with as_owner():
        call_command("prune_events", *args, stdout=out)
    return out.getvalue()


def test_it_deletes_the_events_older_than_the_retention_period_of_every_store(log):
    numbered = sequences()

    output = prune()

    assert output == "Pruned 5 stock events older than 30 days.\n" + NO_DELIVERIES
    assert left() == {key for key, age in log.items() if age < 30}
    assert sequences() == numbered


def test_days_overrides_the_setting_and_the_setting_the_default(log, settings):
    settings.STOCK_EVENT_RETENTION_DAYS = 50

    nothing = prune()
    shorter = prune("--days", "10")

    assert nothing == "Pruned 0 stock events older than 50 days.\n" + NO_DELIVERIES
    assert shorter == "Pruned 7 stock events older than 10 days.\n" + NO_DELIVERIES
    assert left() == {key for key, age in log.items() if age < 10}


def test_a_dry_run_counts_and_deletes_nothing(log):
    before = left()

    output = prune("--dry-run", "--days", "10")

    assert output == (
        "Would prune 7 stock events older than 10 days (dry run: nothing deleted).\n"
        + NO_DELIVERIES_TO_COUNT
    )
    assert left() == before


def test_numbering_goes_on_after_the_pruned_events(berlin, hamburg, log):
    prune("--days", "1")

    after = StockEventFactory(store=berlin)

    assert left() == {("berlin-01", 6), ("hamburg-01", 3), ("berlin-01", 7)}
    assert after.seq == 7


def test_each_batch_is_one_delete_in_a_transaction_of_its_own(log):
    """5 events in batches of 2: 2, 2, 1; the last batch, short, ends it."""
    with CaptureQueriesContext(connection) as queries, as_owner():
        deleted = stock_events_prune(older_than=timedelta(days=30), batch_size=2)

    statements = [
        query["sql"].split()[0]
        for query in queries
        if query["sql"].startswith(("SAVEPOINT", "RELEASE", "DELETE"))
    ]
    assert deleted == 5
    assert statements == ["SAVEPOINT", "DELETE", "RELEASE"] * 3
    assert left() == {key for key, age in log.items() if age < 30}


def test_the_batch_size_is_an_option_of_the_command(log):
    assert prune("--batch-size", "1") == "Pruned 5 stock events older than 30 days.\n" + (
        NO_DELIVERIES
    )


@pytest.mark.parametrize(
    "args",
    [["--days", "0"], ["--days", "-3"], ["--days", "ten"], ["--batch-size", "0"],
     ["--delivery-days", "0"], ["--delivery-days", "x"]],
)  # fmt: skip
def test_a_count_that_is_not_positive_is_refused(log, args):
    before = left()

    with pytest.raises(CommandError):
        prune(*args)

    assert left() == before


@pytest.mark.parametrize("option", ["--days", "--delivery-days"])
def test_days_reaching_back_before_the_year_one_is_refused(log, option):
    before = left()

    with pytest.raises(CommandError, match=f"{option} 999999999 reaches back before the year 1"):
        prune(option, "999999999")

    assert left() == before


def test_beat_prunes_daily_with_the_setting(log, settings):
    settings.STOCK_EVENT_RETENTION_DAYS = 30

    with as_owner():
        deleted = prune_stock_events()

    assert settings.CELERY_BEAT_SCHEDULE["prune-stock-events"] == {
        "task": "events.tasks.prune_stock_events",
        "schedule": 24 * 60 * 60,
    }
    assert deleted == {"events": 5, "deliveries": 0, "attempts": 0}
    assert left() == {key for key, age in log.items() if age < 30}
