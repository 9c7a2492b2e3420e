from django.core.management.base import BaseCommand, CommandError

from audit.models import AuditEvent
from audit.selectors import audit_backlog, audit_chain_break


class Command(BaseCommand):
    help = (
        "Recompute the audit log's hash chain in relay order. Exits 1 and names the first "
        "event that was altered, removed or reordered; outbox entries not yet relayed are "
        "reported but not checked."
    )

    def handle(self, *args, **options):
        broken = audit_chain_break()
        if broken is not None:
            event = AuditEvent.objects.filter(sequence=broken.sequence).first()
            named = f"event {broken.sequence}" + (
                f" ({event.action} {event.object_type}:{event.object_id})" if event else ""
            )
            raise CommandError(f"Audit chain broken at {named}: {broken.reason}.")
        count = AuditEvent.objects.count()
        backlog, _ = audit_backlog()
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit chain intact: {count} events verified; {backlog} waiting to be relayed."
            )
        )
