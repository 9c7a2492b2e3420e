"""Read queries for the catalog."""

from django.db.models import QuerySet

from inventory_site.lookup_cache import fields_of, instance_from, lookups

from .models import Product


def product_list() -> QuerySet[Product]:
    return Product.objects.order_by("sku")


def product_by_sku(sku: str) -> Product | None:
    """The product ``sku``, from the lookup cache (``inventory_site.lookup_cache``): a warm
    process finds it without a query; any product change retires the entry once it
    commits (the catalog generation)."""

    def load():
        product = Product.objects.filter(sku=sku).first()
        if product is None:
            return None
        return fields_of(product)

    fields = lookups.get("product", sku, load)
    if fields is None:
        return None
    return instance_from(Product, fields)


def known_product_id(sku: str) -> int | None:
    """The id of product ``sku`` if this process holds it in memory (no I/O, no check of
    its generation: a guess, for reading ahead)."""
    fields = lookups.peek("product", sku)
    return fields["id"] if fields else None
