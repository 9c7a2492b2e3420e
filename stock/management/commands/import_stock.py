from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.context import origin
from stock.models import AdjustmentReason
from stock.operator_io import (
    ADJUST,
    SET,
    StockFileInvalid,
    StockImportRefused,
    apply_stock_rows,
    parse_stock_csv,
    read_text,
)


class Command(BaseCommand):
    help = (
        "Apply a CSV file of stock counts or changes, all rows or none, with one call of "
        "the bulk stock service (stock_apply_bulk: a set-based statement per 1,000 rows). "
        "With a 'store,sku,on_hand' header (set mode) each row records a physical count "
        "(rows that already match are skipped); with 'store,sku,delta' (adjust mode) each "
        "row changes on_hand by delta with --reason, whose sign must fit it. The mode "
        "comes from the header unless --mode is given. A 'version' column (export_stock "
        "writes one) makes each row a compare-and-set: a row whose level has changed "
        "since it was exported is refused, unless --force. Other columns are ignored. "
        "Every row is checked first and every bad one is named as 'line N: problem' (the "
        "header is line 1); then all rows are applied in one transaction, and a row the "
        "services refuse undoes them all. Each movement's reference is "
        "'import_stock FILE.csv'."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE.csv", help="UTF-8 CSV file with a header")
        parser.add_argument(
            "--mode",
            choices=[SET, ADJUST],
            help="set: on_hand is the new count; adjust: delta is added (default: from the header)",
        )
        parser.add_argument(
            "--reason",
            default=AdjustmentReason.CORRECTION.value,
            help=f"reason recorded on every movement, one of: "
            f"{', '.join(AdjustmentReason.values)} (default: correction)",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="apply rows whose level has changed since the version in the file, "
            "overwriting those changes",
        )

    def handle(self, *args, file: str, mode: str | None, reason: str, force: bool, **options):
        if reason not in AdjustmentReason.values:
            raise CommandError(
                f"Unknown reason {reason!r}; use one of: {', '.join(AdjustmentReason.values)}."
            )
        text = read_text(file)
        try:
            mode, rows = parse_stock_csv(text, mode=mode)
            with origin(request_id="command:import_stock"):
                applied, unchanged = apply_stock_rows(
                    mode,
                    rows,
                    reason=reason,
                    source=f"import_stock {Path(file).name}",
                    force=force,
                )
        except (StockFileInvalid, StockImportRefused) as error:
            for problem in error.problems:
                self.stderr.write(problem)
            advice = ""
            if getattr(error, "stale", 0):
                advice = (
                    " Export the stock again and redo the changes, or use --force to "
                    "overwrite what changed since."
                )
            raise CommandError(
                f"{file}: nothing imported; {len(error.problems)} problem(s) found.{advice}"
            ) from None
        summary = f"{file}: {applied} row(s) applied"
        if mode == SET:
            summary += f", {unchanged} unchanged"
        self.stdout.write(self.style.SUCCESS(f"{summary} ({mode} mode)."))
