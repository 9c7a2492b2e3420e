from rest_framework import serializers

from .models import StockEvent


class StockEventSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="product.sku")

    class Meta:
        model = StockEvent
        fields = [
            "seq", "type", "sku", "on_hand", "reserved", "available", "reorder_point",
            "version", "at",
        ]  # fmt: skip
        read_only_fields = fields
