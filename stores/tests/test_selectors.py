import pytest
from django.contrib.auth.models import AnonymousUser

from stores.models import Role
from stores.selectors import stores_visible_to
from tests.factories import MembershipFactory, StoreFactory, UserFactory


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


def test_staff_see_every_store(stores):
    assert list(stores_visible_to(UserFactory(is_staff=True))) == stores


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
