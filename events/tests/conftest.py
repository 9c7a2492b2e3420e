"""The stores, products and people of the event log's tests."""

import pytest

from stores.models import Role
from tests.factories import ProductFactory, StaffFactory, StoreFactory, member


@pytest.fixture
def berlin(db):
    return StoreFactory(code="berlin-01")


@pytest.fixture
def hamburg(db):
    return StoreFactory(code="hamburg-01")


@pytest.fixture
def tee(db):
    return ProductFactory(sku="TEE")


@pytest.fixture
def mug(db):
    return ProductFactory(sku="MUG")


@pytest.fixture
def viewer(berlin):
    return member("viewer", berlin, Role.VIEWER)


@pytest.fixture
def outsider(hamburg):
    """A manager of another store."""
    return member("outsider", hamburg, Role.MANAGER)


@pytest.fixture
def staff(db):
    return StaffFactory(username="staff")
