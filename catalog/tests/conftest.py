"""The catalog the product list's tests read."""

import pytest

from tests.factories import ProductFactory


@pytest.fixture
def catalog(db):
    """Three products, one of them inactive."""
    return [
        ProductFactory(sku="TEE-RED", name="T-shirt, red"),
        ProductFactory(sku="TEE-BLUE", name="T-shirt, blue", is_active=False),
        ProductFactory(sku="MUG-RED", name="Mug, red"),
    ]
