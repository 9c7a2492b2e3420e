from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.context import origin
from stock.exceptions import StockError
from stock.locks import lock_stock_levels
from stock.models import AdjustmentReason
from stock.operator_io import (
    ADJUST,
    SET,
    StockFileInvalid,
    StockRow,
    parse_stock_csv,
    read_text,
)
from stock.services import stock_adjust, stock_set_count


class ImportRefused(Exception):
    """A service refused some rows; raised inside the transaction to roll it back."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} row(s) refused")
        self.problems = problems


class Command(BaseCommand):
    help = (
        "Apply a CSV file of stock counts or changes, all rows or none. With a "
        "'store,sku,on_hand' header (set mode) each row records a physical count "
        "(stock_set_count; rows that already match are skipped); with 'store,sku,delta' "
        "(adjust mode) each row changes on_hand by delta (stock_adjust with --reason). "
        "The mode comes from the header unless --mode is given; other columns (such as "
        "those export_stock writes) are ignored. Every row is checked first and every "
        "bad one is named as 'line N: problem' (the header is line 1); then all rows "
        "are applied in one transaction, and a row the services refuse undoes them all."
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

    def handle(self, *args, file: str, mode: str | None, reason: str, **options):
        if reason not in AdjustmentReason.values:
            raise CommandError(
                f"Unknown reason {reason!r}; use one of: {', '.join(AdjustmentReason.values)}."
            )
        text = read_text(file)
        try:
            mode, rows = parse_stock_csv(text, mode=mode)
            with origin(request_id="command:import_stock"):
                applied, unchanged = self.apply(mode, rows, reason=reason, source=Path(file).name)
        except (StockFileInvalid, ImportRefused) as error:
            for problem in error.problems:
                self.stderr.write(problem)
            raise CommandError(
                f"{file}: nothing imported; {len(error.problems)} problem(s) found."
            ) from None
        summary = f"{file}: {applied} row(s) applied"
        if mode == SET:
            summary += f", {unchanged} unchanged"
        self.stdout.write(self.style.SUCCESS(f"{summary} ({mode} mode)."))

    @transaction.atomic
    def apply(self, mode: str, rows: list[StockRow], *, reason: str, source: str):
        """Apply every row in one transaction; returns (applied, unchanged).

        The levels the file names are locked first, in primary-key order (as every
        multi-row change does), so the skipped counts stay true until the commit and two
        imports naming the same levels queue instead of deadlocking. A refused row does
        not stop the others being tried, so that every refusal is reported at once (no
        two rows name the same level); then ImportRefused rolls them all back.
        """
        locked = lock_stock_levels((row.store, row.product) for row in rows)
        applied, unchanged, refused = 0, 0, []
        for row in rows:
            note = f"import_stock {source} line {row.line}"
            try:
                if mode == SET:
                    level = locked.get((row.store.pk, row.product.pk))
                    if (level.on_hand if level else 0) == row.value:
                        unchanged += 1
                        continue
                    stock_set_count(
                        store=row.store,
                        product=row.product,
                        on_hand=row.value,
                        reason=reason,
                        note=note,
                    )
                else:
                    stock_adjust(
                        store=row.store,
                        product=row.product,
                        delta=row.value,
                        reason=reason,
                        note=note,
                    )
            except StockError as error:
                refused.append(f"line {row.line}: {error.detail}")
                continue
            applied += 1
        if refused:
            raise ImportRefused(refused)
        return applied, unchanged
