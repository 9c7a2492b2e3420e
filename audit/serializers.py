from rest_framework import serializers

from .models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_username")
    store = serializers.CharField(source="store_code", allow_null=True, default=None)
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    ip = serializers.SerializerMethodField(
        help_text="The client address, shown only to managers of the event's store and to "
        "staff who see every event; null for everyone else."
    )

    class Meta:
        model = AuditEvent
        fields = [
            "sequence", "occurred_at", "recorded_at", "actor", "ip", "request_id", "action",
            "store", "object_type", "object_id", "object_repr", "before", "after",
            "previous_hash", "hash",
        ]  # fmt: skip
        read_only_fields = fields

    def get_ip(self, event) -> str | None:
        """Hidden unless ``audit_events_visible_to`` marked it visible to this user."""
        return event.ip if getattr(event, "ip_visible", False) else None
