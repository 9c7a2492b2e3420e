from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from events.selectors import events_older_than
from events.services import PRUNE_BATCH_SIZE, may_prune_events, stock_events_prune


def positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise ValueError(text)
    return number


class Command(BaseCommand):
    help = (
        "Delete the stock events (every store's) older than the retention period "
        "(STOCK_EVENT_RETENTION_DAYS, default 30 days), a batch per transaction. The "
        "ledger keeps every change; the stores' event numbering goes on. Run it as the "
        "tables' owner: bin/run owner prune_events."
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
            "--dry-run", action="store_true", help="Count what would go; delete nothing."
        )
        parser.add_argument(
            "--batch-size",
            type=positive,
            default=PRUNE_BATCH_SIZE,
            help=f"Events deleted per transaction (default {PRUNE_BATCH_SIZE}).",
        )

    def handle(self, *args, days, dry_run, batch_size, **options):
        days = days or settings.STOCK_EVENT_RETENTION_DAYS
        try:
            age = timedelta(days=days)
            cutoff = timezone.now() - age
        except OverflowError:
            raise CommandError(f"--days {days} reaches back before the year 1.") from None
        if dry_run:
            count = events_older_than(cutoff).count()
            self.stdout.write(
                f"Would prune {count} stock events older than {days} days "
                "(dry run: nothing deleted)."
            )
            return
        if not may_prune_events():
            raise CommandError(
                "This database user may not delete stock events (least privilege): run "
                "it as the tables' owner, bin/run owner prune_events."
            )
        deleted = stock_events_prune(older_than=age, batch_size=batch_size)
        self.stdout.write(
            self.style.SUCCESS(f"Pruned {deleted} stock events older than {days} days.")
        )
