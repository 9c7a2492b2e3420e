"""Read queries for the catalog."""

from django.db.models import QuerySet

from .models import Product


def product_list() -> QuerySet[Product]:
    return Product.objects.order_by("sku")


def product_by_sku(sku: str) -> Product | None:
    return Product.objects.filter(sku=sku).first()
