from rest_framework import serializers

from .models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_username")
    store = serializers.CharField(source="store_code", allow_null=True, default=None)
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "sequence", "occurred_at", "recorded_at", "actor", "ip", "request_id", "action",
            "store", "object_type", "object_id", "object_repr", "before", "after",
            "previous_hash", "hash",
        ]  # fmt: skip
        read_only_fields = fields
