from django.core.management.base import BaseCommand

from stock.services import reservations_expire_all_due


class Command(BaseCommand):
    help = (
        "Expire every active reservation past its expiry now, giving its units back; "
        "beat does the same every RESERVATION_EXPIRY_INTERVAL_SECONDS."
    )

    def handle(self, *args, **options):
        expired = reservations_expire_all_due(via="expire_reservations command")
        self.stdout.write(f"Expired {expired} reservation(s).")
