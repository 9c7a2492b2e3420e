from decimal import Decimal

from rest_framework import serializers

from .models import Product, sku_validator


class ProductSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(max_length=64, validators=[sku_validator])
    price = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), max_value=Decimal("9999999999.99")
    )

    class Meta:
        model = Product
        fields = ["sku", "name", "description", "price", "is_active", "created_at", "updated_at"]
        read_only_fields = ["is_active", "created_at", "updated_at"]
        extra_kwargs = {"description": {"required": False}}

    def validate_sku(self, sku):
        # The database's unique constraint ignores case, so the check must too.
        if Product.objects.filter(sku__iexact=sku).exists():
            raise serializers.ValidationError("A product with this SKU already exists.")
        return sku


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
    """``total_available`` over every store the user can see; ``stores`` one page of them,
    paginated like every list (``?page=``, ``?page_size=`` up to 200)."""

    sku = serializers.CharField()
    total_available = serializers.IntegerField(help_text="Over all the stores, not this page.")
    count = serializers.IntegerField(help_text="Stores the user can see that stock the product.")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    stores = StoreAvailabilitySerializer(many=True)
