"""One product's stock across the stores the user sees: a read-only page for every
store member (linked from the stock list and each level's page), and on the product's
own page for staff."""

import pytest

from stock.services import stock_receive, stock_set_reorder_point
from stock.tests.helpers import level_of
from stores.models import Role
from tests.factories import MembershipFactory, StoreFactory

from .helpers import browser, column

LOW_LABEL = '<span class="low-stock">LOW</span>'


def product_url(product) -> str:
    return f"/admin/stock/stocklevel/product/{product.pk}/"


def shown(response) -> list[tuple]:
    return [
        (level.store.code, level.on_hand, level.available) for level in response.context["levels"]
    ]


@pytest.fixture
def tee_everywhere(level, tee, hamburg, munich):
    """TEE-RED-M: 10 in berlin-01, 4 in hamburg-01 (low: reorder point 5), 7 in munich-01."""
    stock_receive(store=hamburg, product=tee, quantity=4)
    stock_set_reorder_point(store=hamburg, product=tee, reorder_point=5)
    stock_receive(store=munich, product=tee, quantity=7)
    return tee


def test_a_member_sees_the_product_in_each_store_they_see_and_no_other(
    manager, tee_everywhere, hamburg
):
    MembershipFactory(user=manager, store=hamburg, role=Role.VIEWER)

    response = browser(manager).get(product_url(tee_everywhere))

    assert response.status_code == 200
    assert shown(response) == [("berlin-01", 10, 10), ("hamburg-01", 4, 4)]
    assert response.context["total_available"] == 14
    assert "<h1>Red T-shirt (TEE-RED-M) in your stores</h1>" in response.text
    assert "munich-01" not in response.text
    assert column(response, "low") == ["", LOW_LABEL]


@pytest.mark.parametrize("role", ["clerk", "viewer"])
def test_every_role_may_read_it(request, tee_everywhere, role):
    response = browser(request.getfixturevalue(role)).get(product_url(tee_everywhere))

    assert response.status_code == 200
    assert shown(response) == [("berlin-01", 10, 10)]


def test_each_row_leads_to_the_levels_page(manager, tee_everywhere, berlin):
    response = browser(manager).get(product_url(tee_everywhere))

    berlin_level = level_of(berlin, tee_everywhere)
    assert (
        f'<a href="/admin/stock/stocklevel/{berlin_level.pk}/change/">berlin-01</a>'
        in response.text
    )
    assert "/admin/catalog/" not in response.text


def test_staff_see_every_store(staff, tee_everywhere):
    response = browser(staff).get(product_url(tee_everywhere))

    assert shown(response) == [("berlin-01", 10, 10), ("hamburg-01", 4, 4), ("munich-01", 7, 7)]
    assert response.context["total_available"] == 21


def test_a_product_stocked_in_none_of_the_users_stores_says_so(hamburg_manager, tee_everywhere):
    MembershipFactory(user=hamburg_manager, store=StoreFactory(code="empty-01"))
    response = browser(hamburg_manager).get(product_url(tee_everywhere))

    assert shown(response) == [("hamburg-01", 4, 4)]
    response = browser(MembershipFactory(store=StoreFactory(code="other-01")).user).get(
        product_url(tee_everywhere)
    )
    assert shown(response) == []
    assert "No stock of this product in your stores." in response.text


def test_an_unknown_product_is_not_found(manager, level):
    assert browser(manager).get("/admin/stock/stocklevel/product/999999/").status_code == 404


def test_staff_without_a_role_may_not_open_it(staff_without_permissions, tee_everywhere):
    response = browser(staff_without_permissions).get(product_url(tee_everywhere))

    assert response.status_code == 403


def test_the_stock_list_links_each_product_to_its_page(manager, tee_everywhere):
    response = browser(manager).get("/admin/stock/stocklevel/")

    assert column(response, "sku") == ["TEE-RED-M"]
    assert column(response, "product_name") == [
        f'<a href="{product_url(tee_everywhere)}" title="TEE-RED-M in every store">Red T-shirt</a>'
    ]


def test_a_levels_page_links_to_the_products_page(viewer, tee_everywhere, level):
    response = browser(viewer).get(f"/admin/stock/stocklevel/{level.pk}/change/")

    assert f'<a href="{product_url(tee_everywhere)}">In every store</a>' in response.text


# For a member: session, user, "is a member of any store", the product, the levels
# (their count for the pages, then the page), the total available, the sidebar's
# permissions (user, groups). The same for 1 store and 30.
PRODUCT_PAGE_QUERIES = 9


@pytest.mark.parametrize("stores", [1, 30])
def test_the_page_takes_the_same_queries_for_1_and_30_stores(
    django_assert_num_queries, manager, level, tee, stores
):
    for _ in range(1, stores):
        store = StoreFactory()
        MembershipFactory(user=manager, store=store, role=Role.VIEWER)
        stock_receive(store=store, product=tee, quantity=1)
    client = browser(manager)
    client.get(product_url(tee))

    with django_assert_num_queries(PRODUCT_PAGE_QUERIES):
        response = client.get(product_url(tee))

    assert len(response.context["levels"]) == stores


# --- Staff: the product's own page --------------------------------------------------


def test_staff_see_the_products_stock_on_its_catalog_page(staff, tee_everywhere):
    response = browser(staff).get(f"/admin/catalog/product/{tee_everywhere.pk}/change/")

    assert response.status_code == 200
    assert [
        (level.store.code, level.available) for level in response.context["product_levels"]
    ] == [("berlin-01", 10), ("hamburg-01", 4), ("munich-01", 7)]
    assert '<table id="product-levels">' in response.text
    assert f'<a href="{product_url(tee_everywhere)}">' in response.text
