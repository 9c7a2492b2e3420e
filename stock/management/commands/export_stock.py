from django.core.management.base import BaseCommand, CommandError

from stock.operator_io import (
    ITERATOR_CHUNK_SIZE,
    stock_levels_for_report,
    store_by_code,
    write_stock_csv,
)


class Command(BaseCommand):
    help = (
        "Write the stock levels as CSV, 'store,sku,on_hand,reserved,available,"
        "reorder_point,version', sorted by store and SKU, to FILE or to standard output. "
        "'import_stock' reads the file back: rows that still match are skipped, and an "
        "edited row whose level has changed since the export is refused (its version)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--store", metavar="CODE", help="only this store's levels")
        parser.add_argument(
            "file", nargs="?", default="-", metavar="FILE", help="output file; - or none: stdout"
        )

    def handle(self, *args, store: str | None, file: str, **options):
        levels = stock_levels_for_report(store_by_code(store) if store else None)
        levels = levels.iterator(chunk_size=ITERATOR_CHUNK_SIZE)
        if file == "-":
            write_stock_csv(self.stdout, levels)
            return
        try:
            with open(file, "w", newline="", encoding="utf-8") as out:
                count = write_stock_csv(out, levels)
        except OSError as error:
            raise CommandError(f"{file}: {error.strerror}.") from None
        self.stdout.write(self.style.SUCCESS(f"Exported {count} stock level(s) to {file}."))
