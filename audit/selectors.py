"""Read queries for the audit log."""

from django.db.models import BooleanField, Case, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from stores.access import STOCK_AUDIT_ACTION_PREFIXES, audit_visibility
from stores.models import Store

from .chain import first_chain_break
from .models import AuditChainHead, AuditEvent, AuditOutboxEntry


def audit_events_visible_to(user) -> QuerySet[AuditEvent]:
    """The events ``user`` may see, as ``stores.access.audit_visibility`` decides: every
    event for staff holding ``audit.view_auditevent``; otherwise every event of the
    stores they manage, and the stock and reservation events of the other stores they
    hold a role in. Events of no store (catalog changes, failed logins) are staff-only.

    Newest first. Each event is annotated with its store's ``store_code`` and with
    ``ip_visible``: whether the user may see the address it came from (only where they
    manage). A member's stores are named by their ids, so that the page of one store is
    read through the index (store_id, -sequence) in its order.
    """
    events = AuditEvent.objects.annotate(
        store_code=Subquery(Store.objects.filter(pk=OuterRef("store_id")).values("code")[:1])
    ).order_by("-sequence")
    seen = audit_visibility(user)
    if seen.every_event:
        return events.annotate(ip_visible=Value(True))
    managed = _of_stores(seen.full_store_ids)
    visible = managed
    if seen.full_store_ids is None or seen.stock_store_ids is None:
        stock_only = _of_stores(seen.stock_store_ids)
    else:
        stock_only = _of_stores(sorted(set(seen.stock_store_ids) - set(seen.full_store_ids)))
    if seen.stock_store_ids != seen.full_store_ids:
        stock_actions = Q()
        for prefix in STOCK_AUDIT_ACTION_PREFIXES:
            stock_actions |= Q(action__startswith=prefix)
        visible = managed | (stock_only & stock_actions)
    return events.filter(visible).annotate(
        ip_visible=Case(
            When(managed, then=Value(True)), default=Value(False), output_field=BooleanField()
        )
    )


def _of_stores(store_ids: list[int] | None) -> Q:
    """Events of these stores; None: of any store."""
    if store_ids is None:
        return Q(store_id__in=Store.objects.values("pk"))
    return Q(store_id__in=store_ids)


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
