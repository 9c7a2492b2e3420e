"""The people of the HTML pages' tests: staff, and each role in Berlin."""

import pytest

from stores.models import Role
from tests.factories import StoreFactory, UserFactory, member


@pytest.fixture
def berlin(db):
    return StoreFactory(code="berlin-01", name="Berlin")


@pytest.fixture
def hamburg(db):
    return StoreFactory(code="hamburg-01", name="Hamburg")


@pytest.fixture
def staff(db):
    return UserFactory(username="staff", is_staff=True, is_superuser=True)


@pytest.fixture
def manager(berlin):
    return member("manager", berlin, Role.MANAGER)


@pytest.fixture
def clerk(berlin):
    return member("clerk", berlin, Role.CLERK)


@pytest.fixture
def viewer(berlin):
    return member("viewer", berlin, Role.VIEWER)


@pytest.fixture
def outsider(db):
    """Neither staff nor a member of any store."""
    return UserFactory(username="outsider")


@pytest.fixture
def inactive_manager(berlin):
    return member("inactive-manager", berlin, Role.MANAGER, is_active=False)


@pytest.fixture
def hamburg_manager(hamburg):
    return member("hamburg-manager", hamburg, Role.MANAGER)
