"""stores.access: the roles users hold in stores, from memberships and staff permissions."""

import pytest
from django.contrib.auth.models import AnonymousUser

from stores.access import role_in_store, staff_role, stores_visible_to
from stores.models import Role
from tests.factories import MembershipFactory, StaffFactory, StoreFactory, UserFactory

VIEW = "stock.view_stocklevel"
CHANGE = "stock.change_stocklevel"


@pytest.fixture
def stores(db):
    return [StoreFactory(code=code) for code in ("berlin-01", "hamburg-01", "munich-01")]


def test_a_member_sees_only_their_stores(stores):
    user = UserFactory()
    MembershipFactory(user=user, store=stores[0], role=Role.VIEWER)
    MembershipFactory(user=user, store=stores[2], role=Role.MANAGER)

    assert list(stores_visible_to(user)) == [stores[0], stores[2]]


def test_a_role_filter_keeps_stores_where_the_user_holds_at_least_that_role(stores):
    user = UserFactory()
    MembershipFactory(user=user, store=stores[0], role=Role.VIEWER)
    MembershipFactory(user=user, store=stores[1], role=Role.CLERK)
    MembershipFactory(user=user, store=stores[2], role=Role.MANAGER)

    assert list(stores_visible_to(user, role=Role.CLERK)) == [stores[1], stores[2]]
    assert list(stores_visible_to(user, role=Role.MANAGER)) == [stores[2]]


@pytest.mark.parametrize(
    "permissions, role",
    [
        ([], None),
        (["catalog.add_product", "stores.view_store", "audit.view_auditevent"], None),
        ([VIEW], Role.VIEWER),
        ([CHANGE], Role.MANAGER),
        ([VIEW, CHANGE], Role.MANAGER),
    ],
)
def test_the_stock_permissions_give_staff_their_role_in_every_store(stores, permissions, role):
    user = StaffFactory(permissions=permissions)

    assert staff_role(user) == role
    assert [role_in_store(user, store.code) for store in stores] == (
        [(store, role) for store in stores] if role else [(None, None)] * 3
    )
    assert list(stores_visible_to(user)) == (stores if role else [])
    assert list(stores_visible_to(user, role=Role.MANAGER)) == (
        stores if role is Role.MANAGER else []
    )


def test_a_superuser_manages_every_store(stores):
    user = UserFactory(is_staff=True, is_superuser=True)

    assert [role_in_store(user, store) for store in stores] == [
        (store, Role.MANAGER) for store in stores
    ]
    assert list(stores_visible_to(user, role=Role.MANAGER)) == stores


@pytest.mark.parametrize("permissions", [[VIEW], [CHANGE]])
def test_permissions_give_nothing_without_is_staff(stores, permissions):
    user = StaffFactory(is_staff=False, permissions=permissions)

    assert staff_role(user) is None
    assert list(stores_visible_to(user)) == []
    assert role_in_store(user, "berlin-01") == (None, None)


def test_an_inactive_staff_user_holds_no_role(stores):
    user = StaffFactory(is_active=False)

    assert role_in_store(user, "berlin-01") == (None, None)
    assert list(stores_visible_to(user)) == []


def test_staff_who_are_members_hold_the_higher_role_in_each_store(stores):
    user = StaffFactory(permissions=[VIEW])
    MembershipFactory(user=user, store=stores[0], role=Role.MANAGER)
    MembershipFactory(user=user, store=stores[1], role=Role.VIEWER)

    assert [role_in_store(user, store.code)[1] for store in stores] == [
        Role.MANAGER,
        Role.VIEWER,
        Role.VIEWER,
    ]
    assert [role_in_store(user, store)[1] for store in stores] == [
        Role.MANAGER,
        Role.VIEWER,
        Role.VIEWER,
    ]
    assert list(stores_visible_to(user)) == stores
    assert list(stores_visible_to(user, role=Role.MANAGER)) == [stores[0]]


def test_an_unknown_store_has_no_role_for_anyone(stores):
    superuser = UserFactory(is_staff=True, is_superuser=True)

    assert role_in_store(superuser, "nowhere-01") == (None, None)


@pytest.mark.parametrize("by", ["code", "store"])
def test_a_role_in_a_store_costs_at_most_one_query(stores, django_assert_num_queries, by):
    user = UserFactory()
    MembershipFactory(user=user, store=stores[1], role=Role.CLERK)
    target = stores[1].code if by == "code" else stores[1]

    with django_assert_num_queries(1):
        assert role_in_store(user, target) == (stores[1], Role.CLERK)


def test_anonymous_and_inactive_users_see_nothing(stores):
    inactive = UserFactory(is_active=False)
    MembershipFactory(user=inactive, store=stores[0])

    assert list(stores_visible_to(AnonymousUser())) == []
    assert list(stores_visible_to(inactive)) == []


def test_roles_are_ordered():
    assert Role.MANAGER.includes(Role.CLERK)
    assert Role.CLERK.includes(Role.VIEWER)
    assert Role.CLERK.includes(Role.CLERK)
    assert not Role.VIEWER.includes(Role.CLERK)
    assert not Role.CLERK.includes(Role.MANAGER)
