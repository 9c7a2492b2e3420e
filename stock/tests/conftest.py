import pytest

from tests.factories import ProductFactory, StoreFactory, UserFactory


@pytest.fixture
def store(db):
    return StoreFactory(code="berlin-01")


@pytest.fixture
def other_store(db):
    return StoreFactory(code="hamburg-01")


@pytest.fixture
def product(db):
    return ProductFactory(sku="TEE-RED-M")


@pytest.fixture
def other_product(db):
    return ProductFactory(sku="MUG-BLUE")


@pytest.fixture
def clerk(db):
    return UserFactory(username="clerk")
