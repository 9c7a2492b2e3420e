"""The lookups a request makes (token to user, user and store to role, SKU to product) come
from a cache (``inventory_site.lookup_cache``), and every path that changes them retires
them once it commits: the very next request sees the change.

Each test commits for real (``transaction=True``), first shows that the lookup is served
from the cache (the stock read makes no query), then makes the change as another worker
would (``elsewhere``: this process keeps in memory what it held, as a second gunicorn
worker would) and asks again.
"""

import contextlib
import threading

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.db import connection, transaction

from accounts.services import api_token_revoke, token_for_user
from catalog.selectors import product_by_sku
from inventory_site.lookup_cache import ACCESS_GENERATION_KEY, GENERATION_KEYS, lookups
from stock.services import stock_receive
from stores.access import role_in_store
from stores.models import Role
from stores.services import membership_grant, membership_revoke
from tests.api import api_client, assert_error
from tests.factories import (
    MembershipFactory,
    ProductFactory,
    StaffFactory,
    StoreFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

LEVEL = "/api/v1/stores/berlin-01/stock/TEE/"
RECEIVE = LEVEL + "receive/"
PURCHASE = LEVEL + "purchase/"


@pytest.fixture
def berlin():
    store = StoreFactory(code="berlin-01")
    stock_receive(store=store, product=ProductFactory(sku="TEE"), quantity=50)
    return store


def member(store, role):
    user = UserFactory()
    MembershipFactory(user=user, store=store, role=role)
    return user


@contextlib.contextmanager
def elsewhere():
    """Run the block as another process would: the lookups this process holds in memory
    survive it (the writer's own process forgets its memory; the others only learn of
    the change from the generations)."""
    kept = dict(lookups._local)
    yield
    lookups._local.update(kept)


@pytest.fixture
def served_from_cache(django_assert_num_queries):
    """Assert that a read is answered with no query at all: lookups and level cached."""

    def read(client):
        client.get(LEVEL)  # fills whatever is not cached yet
        with django_assert_num_queries(0):
            response = client.get(LEVEL)
        assert response.status_code == 200, response.content
        return response

    return read


# --- Tokens and users -------------------------------------------------------------------


def test_a_revoked_token_is_refused_at_once(berlin, served_from_cache):
    user = member(berlin, Role.VIEWER)
    client = api_client(user)
    served_from_cache(client)

    with elsewhere():
        api_token_revoke(user=user, why="test")

    assert_error(client.get(LEVEL), 401)


def test_a_rotated_token_refuses_the_old_key_and_takes_the_new(berlin, served_from_cache):
    user = member(berlin, Role.VIEWER)
    old = api_client(user)
    served_from_cache(old)

    with elsewhere():
        api_token_revoke(user=user, why="rotation")
        new_key = token_for_user(user=user, actor=user).key

    assert_error(old.get(LEVEL), 401)
    new = api_client()
    new.credentials(HTTP_AUTHORIZATION=f"Token {new_key}")
    assert new.get(LEVEL).status_code == 200


def test_a_deactivated_user_is_refused_at_once(berlin, served_from_cache):
    user = member(berlin, Role.VIEWER)
    client = api_client(user)
    served_from_cache(client)

    with elsewhere():
        user.is_active = False
        user.save()

    assert_error(client.get(LEVEL), 401)


def test_a_new_password_refuses_the_old_token_at_once(berlin, served_from_cache):
    user = member(berlin, Role.VIEWER)
    client = api_client(user)
    served_from_cache(client)

    with elsewhere():
        user.set_password("a new and long password")
        user.save()

    assert_error(client.get(LEVEL), 401)


# --- Memberships ------------------------------------------------------------------------


def test_a_granted_membership_counts_at_once(berlin):
    user = UserFactory()
    client = api_client(user)
    assert_error(client.get(LEVEL), 404)  # the store and "no role" are now cached

    with elsewhere():
        membership_grant(store=berlin, user=user, role=Role.VIEWER, actor=None)

    assert client.get(LEVEL).status_code == 200


def test_a_revoked_membership_hides_the_store_at_once(berlin, served_from_cache):
    user = member(berlin, Role.CLERK)
    client = api_client(user)
    served_from_cache(client)

    with elsewhere():
        membership_revoke(store=berlin, user=user, actor=None)

    assert_error(client.get(LEVEL), 404)


def test_a_lowered_role_is_refused_at_once(berlin, served_from_cache):
    user = member(berlin, Role.MANAGER)
    client = api_client(user)
    served_from_cache(client)
    assert client.post(RECEIVE, {"quantity": 1}, format="json").status_code == 200

    with elsewhere():
        membership_grant(store=berlin, user=user, role=Role.VIEWER, actor=None)

    assert_error(client.post(RECEIVE, {"quantity": 1}, format="json"), 403)


# --- Stores and products ----------------------------------------------------------------


def test_a_deactivated_store_refuses_sales_at_once(berlin, served_from_cache):
    client = api_client(member(berlin, Role.CLERK))
    served_from_cache(client)
    assert client.post(PURCHASE, {"quantity": 1}, format="json").status_code == 200

    with elsewhere():
        berlin.is_active = False
        berlin.save()

    assert_error(client.post(PURCHASE, {"quantity": 1}, format="json"), 409, "store_inactive")


def test_a_deactivated_product_refuses_sales_at_once(berlin, served_from_cache):
    client = api_client(member(berlin, Role.CLERK))
    served_from_cache(client)
    assert client.post(PURCHASE, {"quantity": 1}, format="json").status_code == 200

    product = product_by_sku("TEE")
    with elsewhere():
        product.is_active = False
        product.save()

    assert_error(client.post(PURCHASE, {"quantity": 1}, format="json"), 409, "product_inactive")


# --- Staff permissions ------------------------------------------------------------------


def staff_manager():
    return StaffFactory(permissions=["stock.change_stocklevel", "stock.view_stocklevel"])


def test_a_staff_permission_taken_away_counts_at_once(berlin, served_from_cache):
    user = staff_manager()
    client = api_client(user)
    served_from_cache(client)
    assert client.post(RECEIVE, {"quantity": 1}, format="json").status_code == 200

    with elsewhere():
        user.user_permissions.remove(Permission.objects.get(codename="change_stocklevel"))

    assert_error(client.post(RECEIVE, {"quantity": 1}, format="json"), 403)  # a viewer now
    with elsewhere():
        user.user_permissions.clear()
    assert_error(client.get(LEVEL), 404)  # no role in any store


def test_a_permission_taken_from_a_group_counts_at_once(berlin, served_from_cache):
    user = StaffFactory(permissions=[])
    group = Group.objects.create(name="stock managers")
    group.permissions.add(*Permission.objects.filter(codename__in=["change_stocklevel"]))
    user.groups.add(group)
    client = api_client(user)
    served_from_cache(client)
    assert client.post(RECEIVE, {"quantity": 1}, format="json").status_code == 200

    with elsewhere():
        group.permissions.clear()

    assert_error(client.get(LEVEL), 404)


def test_staff_status_taken_away_counts_at_once(berlin, served_from_cache):
    user = staff_manager()
    client = api_client(user)
    served_from_cache(client)

    with elsewhere():
        user.is_staff = False
        user.save()

    assert_error(client.get(LEVEL), 404)


# --- The race the second retirement closes ----------------------------------------------


@pytest.mark.postgresql("a second connection reads while the first holds its transaction")
def test_a_lookup_loaded_before_the_commit_is_retired_by_it(berlin):
    """A request that runs while a revocation is still uncommitted loads the old
    membership and caches it under the generation the change started; the bump at
    commit retires that entry too."""
    user = member(berlin, Role.CLERK)
    client = api_client(user)
    assert client.get(LEVEL).status_code == 200

    seen = []

    def read_meanwhile():
        # Another connection: it sees the membership, which is not revoked yet.
        try:
            seen.append(role_in_store(user, "berlin-01")[1])
        finally:
            connection.close()

    with transaction.atomic():
        membership_revoke(store=berlin, user=user, actor=None)
        reader = threading.Thread(target=read_meanwhile)
        reader.start()
        reader.join()
    assert seen == [Role.CLERK]

    assert_error(client.get(LEVEL), 404)


# --- Generations never repeat -----------------------------------------------------------


def test_a_revocation_after_the_cache_lost_its_data_is_seen(berlin, served_from_cache):
    """Redis restarted empty (or flushed): the generations start again above every value
    they had, so memory loaded under the old ones is not trusted."""
    user = member(berlin, Role.CLERK)
    client = api_client(user)
    served_from_cache(client)

    cache.clear()
    with elsewhere():
        membership_revoke(store=berlin, user=user, actor=None)

    assert_error(client.get(LEVEL), 404)


def test_generations_that_go_back_in_time_are_not_trusted(berlin, served_from_cache):
    """An old snapshot restored: the generations go back to values under which Redis
    still holds entries from before a revocation. The process has seen newer ones, so
    it loads from the database instead, and starts new generations above all it saw."""
    user = member(berlin, Role.CLERK)
    client = api_client(user)
    served_from_cache(client)  # the clerk's entries, in Redis under these generations
    old = cache.get_many(GENERATION_KEYS)
    with elsewhere():
        membership_revoke(store=berlin, user=user, actor=None)
    assert_error(client.get(LEVEL), 404)
    seen = cache.get_many(GENERATION_KEYS)

    cache.set_many(old, None)  # the restore

    assert_error(client.get(LEVEL), 404)
    assert cache.get(ACCESS_GENERATION_KEY) > seen[ACCESS_GENERATION_KEY]
