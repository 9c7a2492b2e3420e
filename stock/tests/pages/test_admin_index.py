"""The admin's home page lists the user's stores, with a link to the low-stock page of
each store they manage."""

import pytest

from stores.models import Role
from tests.factories import MembershipFactory, StoreFactory

from .helpers import browser

YOUR_STORES_SHOWN = 20


def stores_box(response) -> list:
    return response.context["your_stores"]


def listed(response) -> list[tuple]:
    return [(store.code, store.managed, store.low_count) for store in stores_box(response)]


def test_a_manager_finds_the_low_stock_page_of_their_store_on_the_home_page(manager, low_and_high):
    response = browser(manager).get("/admin/")

    assert response.status_code == 200
    assert listed(response) == [("berlin-01", True, 2)]
    assert '<div class="module" id="your-stores">' in response.text
    assert '<a href="/stores/berlin-01/low-stock/">Low stock (2)</a>' in response.text
    assert '<a href="/admin/stock/stocklevel/?store=berlin-01">Stock</a>' in response.text


def test_each_store_is_offered_what_the_users_role_there_allows(manager, hamburg, munich):
    MembershipFactory(user=manager, store=hamburg, role=Role.CLERK)

    response = browser(manager).get("/admin/")

    assert [(store.code, store.managed) for store in stores_box(response)] == [
        ("berlin-01", True),
        ("hamburg-01", False),
    ]
    assert "/stores/berlin-01/low-stock/" in response.text
    assert "/stores/hamburg-01/low-stock/" not in response.text
    assert '<a href="/admin/stock/stocklevel/?store=hamburg-01">Stock</a>' in response.text
    assert "munich-01" not in response.text


@pytest.mark.parametrize("role", ["manager", "viewer"])
def test_anyone_with_a_store_is_linked_to_its_dashboard_and_no_other(
    request, low_and_high, munich, role
):
    response = browser(request.getfixturevalue(role)).get("/admin/")

    box = response.text[response.text.index('<div class="module" id="store-dashboards">') :]
    assert '<a href="/stores/berlin-01/">berlin-01 dashboard</a>' in box
    assert "/stores/munich-01/" not in response.text


@pytest.mark.parametrize("role", ["clerk", "viewer"])
def test_clerks_and_viewers_are_not_offered_the_low_stock_page(request, low_and_high, role):
    response = browser(request.getfixturevalue(role)).get("/admin/")

    assert [(store.code, store.managed) for store in stores_box(response)] == [("berlin-01", False)]
    assert '<a href="/admin/stock/stocklevel/?store=berlin-01">Stock</a>' in response.text
    assert "/low-stock/" not in response.text
    assert "Low stock" not in response.text


def test_staff_without_a_role_get_no_stores_box(staff_without_permissions):
    response = browser(staff_without_permissions).get("/admin/")

    assert response.status_code == 200
    assert stores_box(response) == []
    assert 'id="your-stores"' not in response.text


def test_the_box_names_the_first_twenty_stores_and_leads_to_the_rest(staff, berlin):
    for number in range(2, 26):
        StoreFactory(code=f"store-{number:02d}")

    response = browser(staff).get("/admin/")

    assert len(stores_box(response)) == YOUR_STORES_SHOWN
    assert response.context["more_stores"] is True
    assert '<a href="/admin/stock/stocklevel/">All stores’ stock</a>' in response.text


# For a manager: session, user, "is a member of any store", the app list's permissions
# (user, groups), the stores box (one query: each store with its role and low count),
# the recent actions. The same for 1 store and for 30.
INDEX_QUERIES = 7


@pytest.mark.parametrize("stores", [1, 30])
def test_the_home_page_takes_the_same_queries_for_1_and_30_stores(
    django_assert_num_queries, manager, berlin, stores
):
    for _ in range(1, stores):
        MembershipFactory(user=manager, store=StoreFactory(), role=Role.MANAGER)
    client = browser(manager)
    client.get("/admin/")

    with django_assert_num_queries(INDEX_QUERIES):
        response = client.get("/admin/")

    assert len(stores_box(response)) == min(stores, YOUR_STORES_SHOWN)
