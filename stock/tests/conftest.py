import pytest

from stores.models import Role
from tests.api import api_client
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory


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


# --- The API tests' store, product and manager ------------------------------------------


@pytest.fixture
def berlin(db):
    return StoreFactory(code="berlin-01")


@pytest.fixture
def tee(db):
    return ProductFactory(sku="TEE", name="T-shirt")


@pytest.fixture
def manager(berlin):
    user = UserFactory(username="manager")
    MembershipFactory(user=user, store=berlin, role=Role.MANAGER)
    return user


@pytest.fixture
def manager_api(manager):
    """An API client with the manager's token."""
    return api_client(manager)
