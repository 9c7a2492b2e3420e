"""The level body built without a serializer (``stock_level_body``, on the purchase path)
is exactly what the serializers that document it produce."""

import pytest
from rest_framework.renderers import JSONRenderer

from stock.selectors import stock_level_or_zero
from stock.serializers import (
    StockLevelSerializer,
    StockOperationResultSerializer,
    stock_level_body,
)
from stock.services import stock_purchase, stock_receive
from tests.factories import ProductFactory, StoreFactory


def rendered(data) -> bytes:
    return JSONRenderer().render(data)


@pytest.mark.django_db
def test_the_body_is_the_serializers_output_byte_for_byte(settings):
    store, product = StoreFactory(), ProductFactory(name="Tee «red»")
    never_stocked = stock_level_or_zero(store, ProductFactory())
    received = stock_receive(store=store, product=product, quantity=5)
    sold = stock_purchase(store=store, product=product, quantity=2)

    for level in (never_stocked, received):
        assert rendered(stock_level_body(level)) == rendered(StockLevelSerializer(level).data)
    assert rendered(stock_level_body(sold, movement_id=sold.movement_id)) == rendered(
        StockOperationResultSerializer(sold).data
    )

    settings.TIME_ZONE = "Europe/Berlin"  # not UTC: rendered with its offset, as DRF does
    assert rendered(stock_level_body(sold)) == rendered(StockLevelSerializer(sold).data)
