from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from catalog.models import Product
from stock.services import stock_receive
from tests.factories import ProductFactory, StoreFactory


@pytest.mark.django_db
def test_skus_differing_only_in_case_are_the_same_product():
    ProductFactory(sku="TEE-RED")

    with pytest.raises(IntegrityError), transaction.atomic():
        ProductFactory(sku="tee-red")

    assert Product.objects.count() == 1


@pytest.mark.django_db
def test_the_database_rejects_a_negative_price():
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductFactory(price=Decimal("-0.01"))


@pytest.mark.parametrize("sku", ["has space", "-leading", "a/b", "é"])
def test_a_sku_must_be_safe_in_a_url(sku):
    with pytest.raises(ValidationError):
        Product._meta.get_field("sku").run_validators(sku)


def test_bulk_is_no_sku_as_it_names_the_bulk_endpoint_in_a_stores_stock():
    with pytest.raises(ValidationError):
        Product._meta.get_field("sku").run_validators("bulk")
    Product._meta.get_field("sku").run_validators("bulk-1")


@pytest.mark.django_db
def test_a_product_with_stock_history_cannot_be_deleted():
    product = ProductFactory()
    stock_receive(store=StoreFactory(), product=product, quantity=1)

    with pytest.raises(ProtectedError):
        product.delete()

    assert Product.objects.filter(pk=product.pk).exists()
