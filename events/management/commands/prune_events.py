from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from events.selectors import events_older_than
from events.services import PRUNE_BATCH_SIZE, may_prune_events, stock_events_prune
from events.webhooks.retention import (
    finished_deliveries_before,
    may_prune_deliveries,
    webhook_deliveries_prune,
)


def positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise ValueError(text)
    return number


def span(days: int) -> str:
    return f"{days} day" if days == 1 else f"{days} days"


def age_of(days: int, option: str) -> tuple[timedelta, object]:
    """(the age, the cutoff it makes now), or CommandError naming ``option``."""
    try:
        age = timedelta(days=days)
        return age, timezone.now() - age
    except OverflowError:
        raise CommandError(f"{option} {days} reaches back before the year 1.") from None


class Command(BaseCommand):
    help = (
        "Delete the stock events (every store's) older than the retention period "
        "(STOCK_EVENT_RETENTION_DAYS, default 30 days), a batch per transaction, and the "
        "webhook deliveries finished (succeeded or given up) more than "
        "WEBHOOK_DELIVERY_RETENTION_DAYS ago (default 30), with their attempts; a delivery "
        "still due is kept. The ledger keeps every change; the stores' event numbering "
        "goes on. Run it as the tables' owner: bin/run owner prune_events."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=positive,
            default=None,
            help="Keep the events of this many days (at least 1). Default: "
            "STOCK_EVENT_RETENTION_DAYS.",
        )
        parser.add_argument(
            "--delivery-days",
            type=positive,
            default=None,
            help="Keep the webhook deliveries finished in this many days (at least 1). "
            "Default: WEBHOOK_DELIVERY_RETENTION_DAYS.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go; delete nothing."
        )
        parser.add_argument(
            "--batch-size",
            type=positive,
            default=PRUNE_BATCH_SIZE,
            help=f"Events deleted per transaction (default {PRUNE_BATCH_SIZE}).",
        )

    def handle(self, *args, days, delivery_days, dry_run, batch_size, **options):
        days = days or settings.STOCK_EVENT_RETENTION_DAYS
        delivery_days = delivery_days or settings.WEBHOOK_DELIVERY_RETENTION_DAYS
        age, cutoff = age_of(days, "--days")
        delivery_age, delivery_cutoff = age_of(delivery_days, "--delivery-days")
        if dry_run:
            count = events_older_than(cutoff).count()
            deliveries = finished_deliveries_before(delivery_cutoff).count()
            self.stdout.write(
                f"Would prune {count} stock events older than {span(days)} "
                "(dry run: nothing deleted)."
            )
            self.stdout.write(
                f"Would prune {deliveries} webhook deliveries finished more than "
                f"{span(delivery_days)} ago (dry run: nothing deleted)."
            )
            return
        if not (may_prune_events() and may_prune_deliveries()):
            raise CommandError(
                "This database user may not delete stock events (least privilege): run "
                "it as the tables' owner, bin/run owner prune_events."
            )
        deleted = stock_events_prune(older_than=age, batch_size=batch_size)
        self.stdout.write(
            self.style.SUCCESS(f"Pruned {deleted} stock events older than {span(days)}.")
        )
        deliveries, attempts = webhook_deliveries_prune(older_than=delivery_age)
        self.stdout.write(
            self.style.SUCCESS(
                f"Pruned {deliveries} webhook deliveries finished more than "
                f"{span(delivery_days)} ago, with their {attempts} attempts."
            )
        )
