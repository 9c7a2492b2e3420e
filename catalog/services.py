"""Writes to the shared catalog (staff only; the API checks that)."""

from decimal import Decimal

from django.db import transaction

from audit.services import audit_record, field_values

from .models import Product

EDITABLE_FIELDS = {"name", "description", "price", "is_active"}
AUDITED_FIELDS = ["sku", "name", "description", "price", "is_active"]


@transaction.atomic
def product_create(
    *, sku: str, name: str, price: Decimal, description: str = "", is_active: bool = True, actor
) -> Product:
    product = Product.objects.create(
        sku=sku, name=name, price=price, description=description, is_active=is_active
    )
    product.refresh_from_db(fields=["price"])  # as stored: 9.5 reads back as 9.50
    _audit(product, "product.create", before=None, actor=actor)
    return product


@transaction.atomic
def product_update(*, product: Product, actor, **changes) -> Product:
    """Change editable fields. The SKU never changes; a product is retired with
    ``is_active=False``, never deleted once it has stock history."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValueError(f"product fields {sorted(unknown)} cannot be changed")
    changed = [field for field, value in changes.items() if getattr(product, field) != value]
    before = field_values(product, changed)
    for field, value in changes.items():
        setattr(product, field, value)
    product.save(update_fields=[*changes, "updated_at"])
    if changed:
        product.refresh_from_db(fields=changed)  # the values as stored, for the audit log
        _audit(product, "product.update", before=before, fields=changed, actor=actor)
    return product


def _audit(product: Product, action: str, *, before, fields=AUDITED_FIELDS, actor) -> None:
    audit_record(
        action=action,
        object_type="catalog.product",
        object_id=product.pk,
        object_repr=product.sku,
        before=before,
        after=field_values(product, fields),
        actor=actor,
    )
