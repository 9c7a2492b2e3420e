from django.core.management.base import BaseCommand, CommandError

from stock.models import StockLevel
from stock.selectors import ledger_disagreements


class Command(BaseCommand):
    help = (
        "Check that every stock level equals the sum of its ledger: on_hand and reserved "
        "match the summed movement deltas, version matches the number of movements, and "
        "reserved matches the units its active reservations hold. "
        "Exits 1 and names each drifting level when one does not. All levels are "
        "checked in one pass over the movements, levels and reservations."
    )

    def handle(self, *args, **options):
        ledger, reservations, orphans = [], [], []
        for found in ledger_disagreements():
            if found.ledger_drift:
                ledger.append(found)
            if found.reservation_drift:
                reservations.append(found)
            if found.without_level:
                orphans.append(found)
        problems = [
            f"{level.store_code}/{level.sku}: stock level says on_hand={level.on_hand} "
            f"reserved={level.reserved} version={level.version}, ledger says "
            f"on_hand={level.ledger_on_hand} reserved={level.ledger_reserved} "
            f"changes={level.ledger_changes}"
            for level in sorted(ledger, key=lambda found: found.level_id)
        ]
        problems += [
            f"{level.store_code}/{level.sku}: reserved={level.reserved} but active "
            f"reservations hold {level.held}"
            for level in sorted(reservations, key=lambda found: found.level_id)
        ]
        problems += [
            f"{orphan.store_code}/{orphan.sku}: movements exist but the stock level does not"
            for orphan in sorted(orphans, key=lambda found: (found.store_code, found.sku))
        ]
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"Ledger drift: {len(problems)} problem(s) found.")
        checked = StockLevel.objects.count()
        self.stdout.write(self.style.SUCCESS(f"Ledger consistent: {checked} stock levels checked."))
