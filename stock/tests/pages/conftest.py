"""The people of the HTML pages' tests: staff, and each role in Berlin."""

import pytest

from stock.services import stock_receive
from stock.tests.helpers import level_of
from stores.models import Role
from tests.factories import (
    ProductFactory,
    StaffFactory,
    StoreFactory,
    UserFactory,
    inventory_permissions,
    member,
)


@pytest.fixture
def berlin(db):
    return StoreFactory(code="berlin-01", name="Berlin")


@pytest.fixture
def hamburg(db):
    return StoreFactory(code="hamburg-01", name="Hamburg")


@pytest.fixture
def staff(db):
    """A superuser: every permission."""
    return UserFactory(username="staff", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_without_permissions(db):
    """``is_staff`` and nothing else: logs in to the admin, holds no role in any store."""
    return StaffFactory(username="staff-none", permissions=[])


@pytest.fixture
def staff_with_view_permissions(db):
    """Every ``view_*`` permission of the inventory apps: a viewer in every store."""
    return StaffFactory(username="staff-view", permissions=inventory_permissions("view"))


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


@pytest.fixture
def tee(db):
    return ProductFactory(sku="TEE-RED-M", name="Red T-shirt")


@pytest.fixture
def level(berlin, tee, manager):
    """10 Red T-shirts in berlin-01, version 1."""
    stock_receive(store=berlin, product=tee, quantity=10, actor=manager)
    return level_of(berlin, tee)
