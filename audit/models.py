"""The audit trail: who changed what, when and from where.

A change writes an ``AuditOutboxEntry`` in its own transaction (``audit.services``); the
relay moves outbox entries into ``AuditEvent`` rows, hash-chained in relay order. Events
are append-only in the database (a migration installs the trigger); the retention
command ``prune_audit`` is the one path that deletes them.
"""

from django.db import models


class AuditRecord(models.Model):
    """What is known of a change when it commits: the fields both tables share.

    ``actor_id`` and ``store_id`` are plain numbers, not foreign keys: an audit record
    outlives the rows it names, and the outbox insert on the hot path takes no key lock
    on the store or user row.
    """

    occurred_at = models.DateTimeField()
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_username = models.CharField(max_length=150, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=64)
    store_id = models.BigIntegerField(null=True, blank=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        abstract = True


class AuditOutboxEntry(AuditRecord):
    """A change not yet relayed into the audit log; deleted by the relay that relays it."""

    class Meta:
        db_table = "audit_outbox"
        verbose_name_plural = "audit outbox entries"


class AuditEvent(AuditRecord):
    """One relayed change. ``sequence`` is its place in the chain: 1, 2, 3, ... in relay
    order, each event's ``hash`` covering its fields and the previous event's hash."""

    sequence = models.BigIntegerField(unique=True)
    outbox_id = models.BigIntegerField(unique=True)
    recorded_at = models.DateTimeField()
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        db_table = "audit_event"
        ordering = ["-sequence"]
        indexes = [
            models.Index(fields=["store_id", "-sequence"], name="audit_event_store_idx"),
            models.Index(fields=["occurred_at"], name="audit_event_occurred_idx"),
            models.Index(fields=["action", "-sequence"], name="audit_event_action_idx"),
            models.Index(fields=["actor_username", "-sequence"], name="audit_event_actor_idx"),
            models.Index(fields=["object_type", "-sequence"], name="audit_event_object_type_idx"),
        ]

    def __str__(self):
        return f"#{self.sequence} {self.action} {self.object_type}:{self.object_id}"


class AuditChainHead(models.Model):
    """The chain's last link (one row). Relays lock it, so events are chained one relay
    at a time, and ``verify_audit_chain`` can tell when events were cut off the end."""

    sequence = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        db_table = "audit_chain_head"
