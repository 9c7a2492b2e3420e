"""The people of the HTML pages' tests: staff, and each role in Berlin."""

import pytest

from stock.services import StockLine, reservation_create, stock_receive, stock_set_reorder_point
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

# berlin, hamburg, and berlin's manager and viewer come from the root conftest.


@pytest.fixture
def munich(db):
    return StoreFactory(code="munich-01", name="Munich")


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
def clerk(berlin):
    """Berlin's clerk, as in the root conftest: stock/tests' own ``clerk`` is a user of
    no store."""
    return member("clerk", berlin, Role.CLERK)


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


@pytest.fixture
def mug(db):
    return ProductFactory(sku="MUG-BLUE", name="Blue mug")


@pytest.fixture
def low_and_high(berlin, tee, mug):
    """In berlin-01: TEE 10 on hand at reorder point 10 (low); MUG 10 on hand at reorder
    point 2 (not low); CAP 5 on hand with 3 reserved at reorder point 3 (low: available 2,
    although on hand is above it)."""
    cap = ProductFactory(sku="CAP-GREEN", name="Green cap")
    for product, on_hand, reorder_point in ((tee, 10, 10), (mug, 10, 2), (cap, 5, 3)):
        stock_receive(store=berlin, product=product, quantity=on_hand)
        stock_set_reorder_point(store=berlin, product=product, reorder_point=reorder_point)
    reservation_create(store=berlin, lines=[StockLine(cap, 3)])
