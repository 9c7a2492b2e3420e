from decimal import Decimal

import pytest

from catalog.models import Product
from tests.api import api_client, assert_error
from tests.factories import StaffFactory, UserFactory


@pytest.fixture
def staff(db):
    return api_client(StaffFactory(username="staffer"))


def test_staff_create_a_product(staff):
    response = staff.post(
        "/api/v1/products/",
        {"sku": "CAP-1", "name": "Cap", "price": "14.50", "description": "Wool"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("sku", "name", "description", "price", "is_active")} == {
        "sku": "CAP-1",
        "name": "Cap",
        "description": "Wool",
        "price": "14.50",
        "is_active": True,
    }
    assert Product.objects.get().price == Decimal("14.50")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"sku": "has space", "name": "x", "price": "1"}, "sku"),
        ({"sku": "TEE-RED", "name": "duplicate", "price": "1"}, "sku"),
        ({"sku": "NEW", "name": "x", "price": "-0.01"}, "price"),
        ({"sku": "NEW", "name": "x", "price": "cheap"}, "price"),
        ({"sku": "NEW", "name": "x", "price": "1.001"}, "price"),
        ({"sku": "NEW", "name": "x", "price": "1e40"}, "price"),
        ({"sku": "NEW", "price": "1"}, "name"),
    ],
)
def test_a_bad_product_is_refused(staff, catalog, body, field):
    response = staff.post("/api/v1/products/", body, format="json")

    assert list(assert_error(response, 400)["errors"]) == [field]
    assert Product.objects.count() == 3


def test_staff_deactivate_a_product_and_its_sku_never_changes(staff, catalog):
    response = staff.patch(
        "/api/v1/products/TEE-RED/", {"is_active": False, "sku": "OTHER"}, format="json"
    )

    assert (response.status_code, response.json()["is_active"]) == (200, False)
    assert Product.objects.filter(sku="TEE-RED", is_active=False).exists()


@pytest.mark.parametrize(
    "query, skus",
    [
        ("", ["MUG-RED", "TEE-BLUE", "TEE-RED"]),
        ("?search=tee", ["TEE-BLUE", "TEE-RED"]),
        ("?search=red", ["MUG-RED", "TEE-RED"]),
        ("?is_active=true", ["MUG-RED", "TEE-RED"]),
        ("?is_active=false", ["TEE-BLUE"]),
        ("?search=shirt&is_active=true", ["TEE-RED"]),
    ],
)
def test_the_catalog_is_searchable(catalog, query, skus):
    client = api_client(UserFactory())

    response = client.get(f"/api/v1/products/{query}")

    assert [p["sku"] for p in response.json()["results"]] == skus


def test_an_unknown_product_is_404(db):
    assert_error(api_client(UserFactory()).get("/api/v1/products/NOPE/"), 404, "not_found")


def test_the_page_size_is_capped_at_200_not_refused(db, django_assert_num_queries):
    Product.objects.bulk_create(
        Product(sku=f"P-{n:04d}", name=f"P{n}", price=Decimal("1")) for n in range(250)
    )
    client = api_client(UserFactory())

    with django_assert_num_queries(3):
        capped = client.get("/api/v1/products/?page_size=100000")
    default = client.get("/api/v1/products/")
    nonsense = client.get("/api/v1/products/?page_size=-3")

    assert (capped.status_code, len(capped.json()["results"])) == (200, 200)
    assert len(default.json()["results"]) == 50
    assert len(nonsense.json()["results"]) == 50
    assert_error(client.get("/api/v1/products/?page=99"), 404)


def test_a_sku_differing_only_in_case_is_a_duplicate(staff, catalog):
    response = staff.post(
        "/api/v1/products/", {"sku": "tee-red", "name": "x", "price": "1.00"}, format="json"
    )

    assert assert_error(response, 400)["errors"] == {
        "sku": ["A product with this SKU already exists."]
    }
    assert Product.objects.count() == 3


@pytest.mark.parametrize(
    "permissions, create, change",
    [
        ([], 403, 403),
        (["catalog.view_product"], 403, 403),
        (["catalog.add_product"], 201, 403),
        (["catalog.change_product"], 403, 200),
    ],
)
def test_staff_create_and_change_products_only_with_those_permissions(
    catalog, permissions, create, change
):
    client = api_client(StaffFactory(username="limited", permissions=permissions))

    created = client.post(
        "/api/v1/products/", {"sku": "CAP-1", "name": "Cap", "price": "1.00"}, format="json"
    )
    changed = client.patch("/api/v1/products/TEE-RED/", {"name": "Renamed"}, format="json")

    assert (created.status_code, changed.status_code) == (create, change)
    for response in (created, changed):
        if response.status_code == 403:
            assert_error(response, 403, "permission_denied")
    assert Product.objects.filter(sku="CAP-1").exists() == (create == 201)
    assert Product.objects.get(sku="TEE-RED").name == (
        "Renamed" if change == 200 else "T-shirt, red"
    )
