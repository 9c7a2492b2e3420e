"""Writes to the audit log.

The request path only adds an outbox entry, in the transaction of the change it records,
so an entry exists exactly when the change committed. After commit a Celery message asks
a worker to relay (at most one per interval and process, and one at the end of an
interval with commits); a beat sweep relays whatever a lost message (broker down, worker
killed) left behind. Relaying is one transaction per batch: the events are chained and
inserted and their outbox entries deleted together, so a relay that dies leaves nothing
half done.
"""

import logging
import threading
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from catalog.models import Product
from inventory_site.cache_outage import CircuitOpen, broker_circuit
from stores.models import Store

from .chain import GENESIS_HASH, event_hash
from .context import current_origin
from .models import AuditChainHead, AuditEvent, AuditOutboxEntry

logger = logging.getLogger(__name__)

PRUNE_SETTING = "inventory.audit_prune"
OBJECT_REPR_LENGTH = 200


def audit_record(
    *,
    action: str,
    object_type: str,
    object_id="",
    object_repr: str = "",
    store=None,
    before: dict | None = None,
    after: dict | None = None,
    actor=None,
) -> None:
    """Record one change in the outbox, in the caller's transaction.

    ``actor`` is the user who made the change (None or anonymous for the system);
    the client address and request id come from ``audit.context``.
    """
    audit_records(
        [
            {
                "action": action,
                "object_type": object_type,
                "object_id": object_id,
                "object_repr": object_repr,
                "store": store,
                "before": before,
                "after": after,
            }
        ],
        actor=actor,
    )


def audit_records(records, *, actor=None) -> None:
    """``audit_record`` for several changes by one actor, as ONE INSERT: each record is
    a dict of ``audit_record``'s keywords but ``actor`` (``object_id``, ``object_repr``,
    ``store``, ``before`` and ``after`` may be left out). A change of many rows (a
    transfer, a checkout) adds its entries in one round trip while it holds their locks."""
    if not settings.AUDIT_ENABLED:
        return
    origin, now = audit_origin_fields(actor), timezone.now()
    entries = [
        AuditOutboxEntry(
            **origin,
            occurred_at=now,
            action=record["action"],
            store_id=getattr(record.get("store"), "pk", record.get("store")),
            object_type=record["object_type"],
            object_id=str(record.get("object_id", "")),
            object_repr=str(record.get("object_repr", ""))[:OBJECT_REPR_LENGTH],
            before=record.get("before"),
            after=record.get("after"),
        )
        for record in records
    ]
    if entries:
        AuditOutboxEntry.objects.bulk_create(entries)
        relay_after_commit()


def audit_origin_fields(actor) -> dict:
    """Who and where, as stored on an outbox entry."""
    user = actor if actor is not None and actor.is_authenticated else None
    where = current_origin()
    return {
        "actor_id": user.pk if user else None,
        "actor_username": user.get_username() if user else "",
        "ip": where.ip,
        "request_id": where.request_id,
    }


def relay_after_commit() -> None:
    """Have the outbox relayed soon after the current transaction commits."""
    if not any(callback is _send_relay for _, callback, _ in connection.run_on_commit):
        transaction.on_commit(_send_relay, robust=True)


class _RelaySchedule:
    """When this process sends the relay message.

    A message per commit would cost every write a broker round trip and the worker a
    transaction per event. Instead a process sends at most one message per
    AUDIT_RELAY_SEND_INTERVAL_SECONDS: the first commit of an interval sends it at once;
    a commit inside the interval starts a timer that sends one more message when the
    interval ends (one timer for every commit meanwhile). So the last events of a burst
    are relayed within an interval, whether or not beat runs. (The message is not
    delayed with a countdown: a worker holding unacknowledged messages when the broker
    goes away can exit, see kombu's restore_unacked.)
    """

    def __init__(self):
        self.next_send_at = 0.0
        self.trailing: threading.Timer | None = None
        self.lock = threading.Lock()

    def committed(self, interval: float, send) -> None:
        """A commit recorded changes: ``send()`` now, at the end of the interval, or not
        at all when a send already scheduled comes after this commit."""
        now = time.monotonic()
        with self.lock:
            if self.trailing is not None:
                return
            if now < self.next_send_at:
                self.trailing = threading.Timer(
                    self.next_send_at - now, self._send_trailing, args=[interval, send]
                )
                self.trailing.daemon = True  # a process that exits leaves it to beat
                self.trailing.start()
                return
            self.next_send_at = now + interval
        send()

    def _send_trailing(self, interval: float, send) -> None:
        with self.lock:
            self.trailing = None
            self.next_send_at = time.monotonic() + interval
        send()

    def send_failed(self) -> None:
        """The next commit tries again at once."""
        with self.lock:
            self.next_send_at = 0.0


_relay_schedule = _RelaySchedule()


def _send_relay() -> None:
    """After a commit that recorded changes: have a worker relay them (see
    _RelaySchedule). Run in-process (embedded mode), the relay is immediate and no
    interval is kept."""
    interval = (
        0.0 if settings.CELERY_TASK_ALWAYS_EAGER else settings.AUDIT_RELAY_SEND_INTERVAL_SECONDS
    )
    _relay_schedule.committed(interval, _publish_relay)


def _publish_relay() -> None:
    """Send the relay message. If the broker cannot take it (or failed moments ago, see
    ``broker_circuit``), the entries wait in the outbox for the next message or the beat
    sweep: the change itself is committed."""
    from .tasks import relay_audit_outbox

    try:
        with broker_circuit:
            relay_audit_outbox.apply_async(retry=False)
    except CircuitOpen:
        _relay_schedule.send_failed()
    except Exception:  # noqa: BLE001 - any broker failure; the sweep relays later
        _relay_schedule.send_failed()
        logger.warning("audit relay not sent; the beat sweep will relay", exc_info=True)


def audit_relay_batch(*, limit: int | None = None) -> int:
    """Relay up to ``limit`` outbox entries, oldest first; returns how many.

    The chain head is locked for the whole batch, so concurrent relays chain one after
    the other and never relay an entry twice.
    """
    limit = limit or settings.AUDIT_RELAY_BATCH_SIZE
    with transaction.atomic():
        head = _locked_chain_head()
        entries = list(AuditOutboxEntry.objects.order_by("pk")[:limit])
        if not entries:
            return 0
        now = timezone.now()
        events = []
        for entry in entries:
            event = AuditEvent(
                **{field.attname: getattr(entry, field.attname) for field in _RECORD_FIELDS},
                sequence=head.sequence + 1,
                outbox_id=entry.pk,
                recorded_at=now,
                previous_hash=head.hash,
            )
            event.hash = event_hash(event, head.hash)
            head.sequence, head.hash = event.sequence, event.hash
            events.append(event)
        AuditEvent.objects.bulk_create(events)
        AuditOutboxEntry.objects.filter(pk__in=[entry.pk for entry in entries]).delete()
        head.save(update_fields=["sequence", "hash"])
        return len(events)


def audit_relay_pending(*, max_batches: int | None = None) -> int:
    """Relay batch after batch until a batch comes back short, i.e. the outbox was
    empty at that moment (or ``max_batches`` ran). Entries committed later belong to
    the next relay message, so that a relay never chases a stream of writes one small
    batch at a time."""
    limit = settings.AUDIT_RELAY_BATCH_SIZE
    total = batches = 0
    while max_batches is None or batches < max_batches:
        relayed = audit_relay_batch(limit=limit)
        total += relayed
        batches += 1
        if relayed < limit:
            break
    return total


def _locked_chain_head() -> AuditChainHead:
    AuditChainHead.objects.bulk_create(
        [AuditChainHead(pk=1, sequence=0, hash=GENESIS_HASH)], ignore_conflicts=True
    )
    return AuditChainHead.objects.select_for_update().get(pk=1)


# What an event copies from its outbox entry: every field of AuditRecord.
_RECORD_FIELDS = [
    field for field in AuditOutboxEntry._meta.concrete_fields if field.attname != "id"
]


def audit_prune(*, older_than: timedelta, actor=None) -> int:
    """Delete the events that occurred more than ``older_than`` ago; returns how many.

    Only a prefix of the chain is removed (every event before the first one to keep), so
    what remains still verifies. The pruning itself is recorded as an audit event. This
    is the only code that deletes events: the database refuses a DELETE unless this
    transaction has set ``inventory.audit_prune``.
    """
    cutoff = timezone.now() - older_than
    with transaction.atomic():
        head = _locked_chain_head()  # no relay appends while the prefix is cut
        first_kept = (
            AuditEvent.objects.filter(occurred_at__gte=cutoff)
            .order_by("sequence")
            .values_list("sequence", flat=True)
            .first()
        )
        if first_kept is None:  # everything goes: the chain resumes with the next event
            first_kept = head.sequence + 1
        doomed = AuditEvent.objects.filter(sequence__lt=first_kept)
        _allow_prune()
        deleted, _ = doomed.delete()
        audit_record(
            action="audit.prune",
            object_type="audit.auditevent",
            object_repr=f"events before {_iso(cutoff)}",
            before=None,
            after={
                "older_than_seconds": int(older_than.total_seconds()),
                "cutoff": _iso(cutoff),
                "deleted": deleted,
                "first_kept_sequence": first_kept,
            },
            actor=actor,
        )
        return deleted


def _allow_prune() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, 'on', true)", [PRUNE_SETTING])


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


# --- Stock movements ----------------------------------------------------------------
# A movement's outbox entry is written with the movement itself: on PostgreSQL inside
# the same statement as the guarded UPDATE (see ``movement_outbox_sql``), so auditing
# adds no round trip while the level's row lock is held.

MOVEMENT = "stock.movement"


def movement_levels(*, on_hand, reserved, version, delta_on_hand, delta_reserved):
    """The level's values before and after a movement, as audit ``before``/``after``."""
    before = {
        "on_hand": on_hand - delta_on_hand,
        "reserved": reserved - delta_reserved,
        "version": version - 1,
    }
    return before, {"on_hand": on_hand, "reserved": reserved, "version": version}


def audit_movement(movement, *, actor) -> None:
    """Record ``movement`` (a saved Movement) in the outbox."""
    audit_records(movement_audit_records([movement]), actor=actor)


def movement_audit_records(movements) -> list[dict]:
    """The audit records (for ``audit_records``) of saved ``movements``."""
    records = []
    for movement in movements:
        before, after = movement_levels(
            on_hand=movement.on_hand_after,
            reserved=movement.reserved_after,
            version=movement.version_after,
            delta_on_hand=movement.delta_on_hand,
            delta_reserved=movement.delta_reserved,
        )
        records.append(
            {
                "action": f"stock.{movement.kind}",
                "object_type": MOVEMENT,
                "object_id": movement.pk,
                "object_repr": _movement_repr(movement.product, movement.store),
                "store": movement.store,
                "before": before,
                "after": after,
            }
        )
    return records


# The columns of the movement table that a ``movement_outbox_sql`` source returns. The
# outbox entry is derived from the movement row alone (with its product and store), so
# the statement depends on the ledger's schema, owned here, and on no writer's parameter
# names.
MOVEMENT_SOURCE_COLUMNS = (
    "id",
    "store_id",
    "product_id",
    "kind",
    "delta_on_hand",
    "delta_reserved",
    "on_hand_after",
    "reserved_after",
    "version_after",
    "actor_id",
    "created_at",
)


def movement_outbox_params(*, actor) -> dict:
    """The parameters of ``movement_outbox_sql``: who made the change and from where
    (one actor per statement), under names no writer's own parameters use."""
    origin = audit_origin_fields(actor)
    return {
        "audit_actor_username": origin["actor_username"],
        "audit_ip": origin["ip"],
        "audit_request_id": origin["request_id"],
    }


def movement_outbox_sql(source: str) -> str:
    """A PostgreSQL INSERT (for a data-modifying CTE, or a statement of its own) adding
    the outbox entry of every movement row in ``source``, a CTE or table returning
    ``MOVEMENT_SOURCE_COLUMNS``; one entry per row, in movement id order, exactly as
    ``movement_audit_records`` builds them in Python. Takes the parameters of
    ``movement_outbox_params``. Call ``relay_after_commit`` once it has run."""
    quote = connection.ops.quote_name
    outbox = quote(AuditOutboxEntry._meta.db_table)
    products = quote(Product._meta.db_table)
    stores = quote(Store._meta.db_table)
    return f"""
        INSERT INTO {outbox}
               (occurred_at, actor_id, actor_username, ip, request_id, action, store_id,
                object_type, object_id, object_repr, before, after)
        SELECT moved.created_at, moved.actor_id, %(audit_actor_username)s,
               %(audit_ip)s::inet, %(audit_request_id)s, 'stock.' || moved.kind,
               moved.store_id, '{MOVEMENT}', moved.id::text,
               left(product.sku || ' @ ' || store.code, {OBJECT_REPR_LENGTH}),
               jsonb_build_object('on_hand', moved.on_hand_after - moved.delta_on_hand,
                                  'reserved', moved.reserved_after - moved.delta_reserved,
                                  'version', moved.version_after - 1),
               jsonb_build_object('on_hand', moved.on_hand_after,
                                  'reserved', moved.reserved_after,
                                  'version', moved.version_after)
          FROM {source} AS moved
          JOIN {products} AS product ON product.id = moved.product_id
          JOIN {stores} AS store ON store.id = moved.store_id
         ORDER BY moved.id
    """


def _movement_repr(product, store) -> str:
    return f"{product.sku} @ {store.code}"


def field_values(instance, fields) -> dict:
    """``fields`` of a model instance as JSON-safe audit values (decimals and dates as
    text, so that the stored value is exactly what was hashed)."""
    values = {}
    for field in fields:
        value = getattr(instance, field)
        values[field] = (
            value if value is None or isinstance(value, bool | int | str) else str(value)
        )
    return values
