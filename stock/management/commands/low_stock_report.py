from django.core.management.base import BaseCommand

from stock.operator_io import ITERATOR_CHUNK_SIZE, low_stock_levels, store_by_code, text_table


class Command(BaseCommand):
    help = (
        "List the stock levels whose available units are at or below their reorder "
        "point, by store and SKU: what to reorder. Retired (inactive) products are left "
        "out, and so are inactive stores unless --store names one. Exits 0 whether or not "
        "any level is low."
    )

    def add_arguments(self, parser):
        parser.add_argument("--store", metavar="CODE", help="only this store")

    def handle(self, *args, store: str | None, **options):
        levels = low_stock_levels(store_by_code(store) if store else None)
        rows = [
            [
                level.store.code,
                level.product.sku,
                level.product.name,
                level.available,
                level.reorder_point,
            ]
            for level in levels.iterator(chunk_size=ITERATOR_CHUNK_SIZE)
        ]
        if not rows:
            self.stdout.write("No stock at or below its reorder point.")
            return
        headers = ["store", "sku", "name", "available", "reorder point"]
        for line in text_table(headers, rows, numeric={3, 4}):
            self.stdout.write(line)
        self.stdout.write(f"{len(rows)} stock level(s) at or below the reorder point.")
