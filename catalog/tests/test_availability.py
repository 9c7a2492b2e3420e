"""GET /api/v1/products/{sku}/availability/: the total over every store the user can
see, and those stores a page at a time, so that a product stocked in thousands of stores
is not one unbounded answer."""

import pytest

from stock.services import stock_receive
from stores.models import Role
from tests.api import api_client, assert_error
from tests.factories import MembershipFactory, StoreFactory, UserFactory

URL = "/api/v1/products/TEE/availability/"


@pytest.fixture
def viewer(tee):
    """Sees store-a (3 available), store-b (5) and store-c (7); not hidden-01 (100)."""
    user = UserFactory(username="viewer")
    for code, units in [("store-c", 7), ("store-a", 3), ("store-b", 5)]:
        store = StoreFactory(code=code)
        MembershipFactory(user=user, store=store, role=Role.VIEWER)
        stock_receive(store=store, product=tee, quantity=units)
    stock_receive(store=StoreFactory(code="hidden-01"), product=tee, quantity=100)
    return user


def store_row(code: str, units: int) -> dict:
    return {"store": code, "on_hand": units, "reserved": 0, "available": units}


def test_the_stores_come_a_page_at_a_time_and_the_total_counts_them_all(viewer):
    client = api_client(viewer)

    first = client.get(f"{URL}?page_size=2")
    second = client.get(f"{URL}?page_size=2&page=2")

    assert first.json() == {
        "sku": "TEE",
        "total_available": 15,
        "count": 3,
        "next": f"http://testserver{URL}?page=2&page_size=2",
        "previous": None,
        "stores": [store_row("store-a", 3), store_row("store-b", 5)],
    }
    assert second.json() == {
        "sku": "TEE",
        "total_available": 15,
        "count": 3,
        "next": None,
        "previous": f"http://testserver{URL}?page_size=2",
        "stores": [store_row("store-c", 7)],
    }


def test_one_page_costs_a_fixed_number_of_queries(viewer, django_assert_num_queries):
    client = api_client(viewer)

    # the token and its user, the product by SKU, the user's memberships (read first,
    # where the primary answers, so that a replica's levels are scoped by them), then
    # over the visible levels: their count, the page, the total
    with django_assert_num_queries(6):
        response = client.get(URL)

    assert (response.json()["count"], len(response.json()["stores"])) == (3, 3)


def test_the_page_size_is_capped_at_200(tee):
    staff = UserFactory(username="root", is_staff=True, is_superuser=True)
    for store in StoreFactory.create_batch(201):
        stock_receive(store=store, product=tee, quantity=1)

    response = api_client(staff).get(f"{URL}?page_size=100000")

    body = response.json()
    assert (body["count"], body["total_available"], len(body["stores"])) == (201, 201, 200)
    assert body["next"] == f"http://testserver{URL}?page=2&page_size=100000"


def test_a_product_no_visible_store_stocks_has_an_empty_first_page(tee):
    response = api_client(UserFactory()).get(URL)

    assert response.json() == {
        "sku": "TEE",
        "total_available": 0,
        "count": 0,
        "next": None,
        "previous": None,
        "stores": [],
    }


@pytest.mark.parametrize("page", ["0", "2", "-1", "abc"])
def test_a_page_past_the_end_is_404(viewer, page):
    assert_error(api_client(viewer).get(f"{URL}?page={page}"), 404, "not_found")


def test_an_unknown_product_is_404(db):
    assert_error(api_client(UserFactory()).get("/api/v1/products/NOPE/availability/"), 404)
