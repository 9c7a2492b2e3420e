from decimal import Decimal

from rest_framework import serializers

from .models import Product


class ProductSerializer(serializers.ModelSerializer):
    price = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), max_value=Decimal("9999999999.99")
    )

    class Meta:
        model = Product
        fields = ["sku", "name", "description", "price", "is_active", "created_at", "updated_at"]
        read_only_fields = ["is_active", "created_at", "updated_at"]
        extra_kwargs = {"description": {"required": False}}


class ProductUpdateSerializer(serializers.ModelSerializer):
    price = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=Decimal("9999999999.99"),
        required=False,
    )

    class Meta:
        model = Product
        fields = ["name", "description", "price", "is_active"]
        extra_kwargs = {
            field: {"required": False} for field in ["name", "description", "is_active"]
        }


class StoreAvailabilitySerializer(serializers.Serializer):
    store = serializers.CharField(source="store.code")
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField()


class ProductAvailabilitySerializer(serializers.Serializer):
    sku = serializers.CharField()
    total_available = serializers.IntegerField()
    stores = StoreAvailabilitySerializer(many=True)
