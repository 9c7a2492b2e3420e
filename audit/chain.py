"""The hash chain over audit events.

Each event's hash is SHA-256 over the previous event's hash and the event's own fields,
written as canonical JSON (sorted keys, no spaces, UTC timestamps). Altering, removing or
reordering an event breaks the chain from that event on.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC

GENESIS_HASH = "0" * 64

CHAINED_FIELDS = (
    "sequence",
    "occurred_at",
    "recorded_at",
    "actor_id",
    "actor_username",
    "ip",
    "request_id",
    "action",
    "store_id",
    "object_type",
    "object_id",
    "object_repr",
    "before",
    "after",
)


def event_hash(event, previous_hash: str) -> str:
    """The hash ``event`` (an AuditEvent, saved or not) must carry after ``previous_hash``."""
    fields = {name: _canonical(getattr(event, name)) for name in CHAINED_FIELDS}
    payload = json.dumps(
        {"previous_hash": previous_hash, **fields},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _canonical(value):
    if hasattr(value, "astimezone"):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


@dataclass(frozen=True)
class ChainBreak:
    """Where the chain first fails to verify: the event (its sequence) and why."""

    sequence: int | None
    reason: str


def first_chain_break(events, *, first_sequence: int, head) -> ChainBreak | None:
    """Walk ``events`` (in sequence order) and return the first break, or None.

    ``first_sequence`` is where the chain must start: 1, or the first sequence the
    latest pruning kept. ``head`` is the chain head row (None if nothing was relayed),
    which tells whether events were cut off the end.
    """
    expected, previous_hash = first_sequence, GENESIS_HASH if first_sequence == 1 else None
    for event in events:
        if event.sequence != expected:
            return ChainBreak(
                event.sequence, f"events {expected} to {event.sequence - 1} are missing"
            )
        if previous_hash is not None and event.previous_hash != previous_hash:
            return ChainBreak(event.sequence, "it does not link to the event before it")
        if event_hash(event, event.previous_hash) != event.hash:
            return ChainBreak(event.sequence, "its contents do not match its hash")
        expected, previous_hash = expected + 1, event.hash
    if head is not None and head.sequence >= expected:
        return ChainBreak(expected, f"events {expected} to {head.sequence} are missing")
    if head is not None and previous_hash is not None and head.hash != previous_hash:
        return ChainBreak(expected - 1, "the chain head does not match the last event")
    return None
