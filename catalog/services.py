"""Writes to the shared catalog (staff only; the API checks that)."""

from decimal import Decimal

from django.db import transaction

from .models import Product

EDITABLE_FIELDS = {"name", "description", "price", "is_active"}


@transaction.atomic
def product_create(*, sku: str, name: str, price: Decimal, description: str = "", actor) -> Product:
    return Product.objects.create(sku=sku, name=name, price=price, description=description)


@transaction.atomic
def product_update(*, product: Product, actor, **changes) -> Product:
    """Change editable fields. The SKU never changes; a product is retired with
    ``is_active=False``, never deleted once it has stock history."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValueError(f"product fields {sorted(unknown)} cannot be changed")
    for field, value in changes.items():
        setattr(product, field, value)
    product.save(update_fields=[*changes, "updated_at"])
    return product
