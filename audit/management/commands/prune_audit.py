import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit.context import origin
from audit.services import audit_prune

UNITS = {"y": timedelta(days=366), "w": timedelta(weeks=1), "d": timedelta(days=1),
         "h": timedelta(hours=1)}  # fmt: skip
DURATION = re.compile(r"^(\d+)([ywdh])$")


def duration(text: str) -> timedelta:
    match = DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 7y, 52w, 90d or 12h")
    try:
        age = int(match[1]) * UNITS[match[2]]
        timezone.now() - age  # the cutoff must be a date the database can hold
    except OverflowError:
        raise ValueError(f"{text!r} reaches back before the year 1") from None
    return age


class Command(BaseCommand):
    help = (
        "Delete audit events that occurred longer ago than --older-than (default 7y: the "
        "retention period), in one statement, and record the pruning as an audit event. "
        "This is the only path that deletes audit events."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            default="7y",
            help=(
                "Age of the events to delete: <n>y (366 days, so that no year is cut "
                "short), <n>w, <n>d or <n>h. Default 7y."
            ),
        )

    def handle(self, *args, older_than: str, **options):
        try:
            age = duration(older_than)
        except ValueError as error:
            raise CommandError(str(error)) from None
        if age <= timedelta(0):
            raise CommandError("--older-than must be longer than zero.")
        with origin(request_id="command:prune_audit"):
            deleted = audit_prune(older_than=age)
        self.stdout.write(
            self.style.SUCCESS(f"Pruned {deleted} audit events older than {older_than}.")
        )
