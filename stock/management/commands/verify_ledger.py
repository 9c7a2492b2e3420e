from django.core.management.base import BaseCommand, CommandError

from stock.models import StockLevel
from stock.selectors import (
    movements_without_stock_level,
    stock_levels_with_ledger_drift,
    stock_levels_with_reservation_drift,
)


class Command(BaseCommand):
    help = (
        "Check that every stock level equals the sum of its ledger: on_hand and reserved "
        "match the summed movement deltas, version matches the number of movements, and "
        "reserved matches the units its active reservations hold. "
        "Exits 1 and names each drifting level when one does not."
    )

    def handle(self, *args, **options):
        problems = [
            f"{level.store.code}/{level.product.sku}: stock level says on_hand={level.on_hand} "
            f"reserved={level.reserved} version={level.version}, ledger says "
            f"on_hand={level.ledger_on_hand} reserved={level.ledger_reserved} "
            f"changes={level.ledger_changes}"
            for level in stock_levels_with_ledger_drift().iterator(chunk_size=2000)
        ]
        problems += [
            f"{level.store.code}/{level.product.sku}: reserved={level.reserved} but active "
            f"reservations hold {level.held}"
            for level in stock_levels_with_reservation_drift().iterator(chunk_size=2000)
        ]
        orphans = (
            movements_without_stock_level().values_list("store__code", "product__sku").distinct()
        )
        problems += [
            f"{store_code}/{sku}: movements exist but the stock level does not"
            for store_code, sku in orphans
        ]
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"Ledger drift: {len(problems)} problem(s) found.")
        checked = StockLevel.objects.count()
        self.stdout.write(self.style.SUCCESS(f"Ledger consistent: {checked} stock levels checked."))
