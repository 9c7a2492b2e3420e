"""Read queries for the audit log."""

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from stores.access import stores_visible_to
from stores.models import Store

from .chain import first_chain_break
from .models import AuditChainHead, AuditEvent, AuditOutboxEntry


def audit_events_visible_to(user) -> QuerySet[AuditEvent]:
    """Staff see every event; anyone else the events of the stores they are a member of
    (events of no store, such as catalog changes and failed logins, are staff-only).
    Each event is annotated with its store's ``store_code``."""
    events = AuditEvent.objects.annotate(
        store_code=Subquery(Store.objects.filter(pk=OuterRef("store_id")).values("code")[:1])
    ).order_by("-sequence")
    if user.is_authenticated and user.is_active and user.is_staff:
        return events
    return events.filter(store_id__in=stores_visible_to(user).values("pk"))


def audit_backlog() -> tuple[int, float]:
    """(outbox entries not yet relayed, seconds the oldest of them has waited)."""
    count = AuditOutboxEntry.objects.count()
    oldest = AuditOutboxEntry.objects.order_by("pk").values_list("occurred_at", flat=True).first()
    waited = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    return count, max(waited, 0.0)


def audit_last_relay_lag() -> float | None:
    """Seconds between the last relayed event's change and its relay."""
    last = AuditEvent.objects.order_by("-sequence").values("occurred_at", "recorded_at").first()
    return (last["recorded_at"] - last["occurred_at"]).total_seconds() if last else None


def audit_chain_break():
    """The first place the audit chain fails to verify (``audit.chain.ChainBreak``), or None."""
    first_sequence = _first_kept_sequence()
    events = AuditEvent.objects.order_by("sequence").iterator(chunk_size=2000)
    return first_chain_break(
        events, first_sequence=first_sequence, head=AuditChainHead.objects.filter(pk=1).first()
    )


def _first_kept_sequence() -> int:
    """Where the chain starts: 1, or the first sequence the latest pruning kept (whose own
    event may still wait in the outbox)."""
    kept = [1]
    for model in (AuditEvent, AuditOutboxEntry):
        pruning = (
            model.objects.filter(action="audit.prune")
            .order_by("-pk")
            .values_list("after", flat=True)
            .first()
        )
        if pruning:
            kept.append(pruning["first_kept_sequence"])
    return max(kept)
