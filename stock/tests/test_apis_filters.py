"""The list endpoints' query parameters: several SKUs at once, ordering by the documented
fields, and every unknown parameter or malformed value answered 400 naming it, never
ignored (an ignored filter answers every row, which a client cannot tell from a match)."""

from datetime import timedelta

import pytest
import yaml
from django.utils import timezone

from stock.models import Reservation
from stock.services import (
    StockLine,
    reservation_create,
    stock_purchase,
    stock_receive,
    stock_set_reorder_point,
)
from tests.api import assert_error
from tests.factories import ProductFactory

BASE = "/api/v1/stores/berlin-01"


@pytest.fixture
def shelf(berlin, tee):
    """TEE 10 (reorder at 2), MUG 2 (at 2), CAP 1 (at 5), HAT 4 (at 0), updated in that
    order."""
    for product, quantity, reorder_point in (
        (tee, 10, 2),
        (ProductFactory(sku="MUG", name="Mug"), 2, 2),
        (ProductFactory(sku="CAP", name="Cap"), 1, 5),
        (ProductFactory(sku="HAT", name="Hat"), 4, 0),
    ):
        stock_receive(store=berlin, product=product, quantity=quantity)
        stock_set_reorder_point(store=berlin, product=product, reorder_point=reorder_point)


def skus(response) -> list[str]:
    assert response.status_code == 200, response.content[:500]
    return [row["sku"] for row in response.json()["results"]]


# --- Several SKUs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?sku=TEE", ["TEE"]),
        ("?sku=TEE,CAP", ["CAP", "TEE"]),
        ("?sku=TEE, CAP ,NOPE", ["CAP", "TEE"]),
        ("?sku=TEE,CAP&low_stock=true", ["CAP"]),
        ("?sku=NOPE", []),
    ],
)
def test_sku_takes_several_skus_separated_by_commas(manager_api, shelf, query, expected):
    assert skus(manager_api.get(f"{BASE}/stock/{query}")) == expected


def test_two_hundred_skus_are_one_call_and_more_are_400(
    manager_api, shelf, django_assert_num_queries
):
    many = ",".join(["TEE", "MUG", *(f"X-{number}" for number in range(198))])

    with django_assert_num_queries(4):  # token user, store and role, count, page
        response = manager_api.get(f"{BASE}/stock/", {"sku": many})
    too_many = manager_api.get(f"{BASE}/stock/", {"sku": many + ",CAP"})

    assert skus(response) == ["MUG", "TEE"]
    assert assert_error(too_many, 400, "invalid")["errors"] == {
        "sku": ["Send at most 200 values, separated by commas."]
    }


# --- Ordering ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ordering, expected",
    [
        ("", ["CAP", "HAT", "MUG", "TEE"]),
        ("sku", ["CAP", "HAT", "MUG", "TEE"]),
        ("-sku", ["TEE", "MUG", "HAT", "CAP"]),
        ("on_hand", ["CAP", "MUG", "HAT", "TEE"]),
        ("-available", ["TEE", "HAT", "MUG", "CAP"]),
        ("reorder_point", ["HAT", "MUG", "TEE", "CAP"]),  # MUG and TEE tie: by SKU
        ("-reorder_point", ["CAP", "TEE", "MUG", "HAT"]),  # the tie reversed too
        ("updated_at", ["TEE", "MUG", "CAP", "HAT"]),
        ("-updated_at", ["HAT", "CAP", "MUG", "TEE"]),
        ("reorder_point,-on_hand", ["HAT", "TEE", "MUG", "CAP"]),
    ],
)
def test_the_stock_list_orders_by_the_documented_fields(manager_api, shelf, ordering, expected):
    assert skus(manager_api.get(f"{BASE}/stock/", {"ordering": ordering})) == expected


def test_the_ledger_orders_by_time_or_id(manager_api, berlin, tee):
    stock_receive(store=berlin, product=tee, quantity=5)
    stock_purchase(store=berlin, product=tee, quantity=1)

    oldest_first = manager_api.get(f"{BASE}/movements/?ordering=created_at").json()["results"]
    by_id = manager_api.get(f"{BASE}/movements/?ordering=id").json()["results"]
    newest_first = manager_api.get(f"{BASE}/movements/?ordering=-id").json()["results"]

    assert [movement["kind"] for movement in oldest_first] == ["receive", "sale"]
    assert by_id == oldest_first
    assert newest_first == oldest_first[::-1]


def test_reservations_order_by_expiry(manager_api, berlin, tee):
    stock_receive(store=berlin, product=tee, quantity=5)
    later = reservation_create(store=berlin, lines=[StockLine(tee, 1)], ttl_seconds=600)
    sooner = reservation_create(store=berlin, lines=[StockLine(tee, 1)], ttl_seconds=60)
    Reservation.objects.filter(pk=later.pk).update(created_at=timezone.now() - timedelta(seconds=1))

    default = manager_api.get(f"{BASE}/reservations/").json()["results"]
    by_expiry = manager_api.get(f"{BASE}/reservations/?ordering=expires_at").json()["results"]

    reversed_expiry = manager_api.get(f"{BASE}/reservations/?ordering=-expires_at").json()
    assert [reservation["id"] for reservation in default] == [str(sooner.pk), str(later.pk)]
    assert [reservation["id"] for reservation in by_expiry] == [str(sooner.pk), str(later.pk)]
    assert [reservation["id"] for reservation in reversed_expiry["results"]] == [
        str(later.pk),
        str(sooner.pk),
    ]


@pytest.mark.parametrize(
    "path, ordering",
    [
        ("stock/", "price"),
        ("stock/", "sku,product__name"),
        ("stock/", "--sku"),
        ("movements/", "actor"),
        ("reservations/", "status"),
    ],
)
def test_ordering_by_an_undocumented_field_is_400(manager_api, shelf, path, ordering):
    response = manager_api.get(f"{BASE}/{path}", {"ordering": ordering})

    assert list(assert_error(response, 400, "invalid")["errors"]) == ["ordering"]


# --- Unknown and malformed parameters ---------------------------------------------------

LISTS = [
    f"{BASE}/stock/",
    f"{BASE}/movements/",
    f"{BASE}/reservations/",
    f"{BASE}/members/",
    "/api/v1/stores/",
    "/api/v1/products/",
    "/api/v1/audit/",
]


@pytest.mark.parametrize("path", LISTS)
def test_an_unknown_parameter_is_400_naming_it(manager_api, shelf, path):
    response = manager_api.get(path, {"skus": "TEE", "page_size": 10})

    body = assert_error(response, 400, "invalid")
    assert list(body["errors"]) == ["skus"]
    assert body["errors"]["skus"][0].startswith("Unknown parameter; this list's filters are:")


# The lists that grow without bound page by cursor (no count), the others by number.
CURSOR_LISTS = [f"{BASE}/movements/", "/api/v1/audit/"]


@pytest.mark.parametrize("path", LISTS)
def test_the_page_parameters_and_format_are_known_everywhere(manager_api, shelf, path):
    page = {"cursor": "cD0xMDA="} if path in CURSOR_LISTS else {"page": 1}

    response = manager_api.get(path, {**page, "page_size": 10, "format": "json"})

    assert response.status_code == 200, response.content[:300]


@pytest.mark.parametrize("path", CURSOR_LISTS)
def test_a_page_number_on_a_cursor_paginated_list_is_400(manager_api, shelf, path):
    response = manager_api.get(path, {"page": 2})

    body = assert_error(response, 400, "invalid")
    assert list(body["errors"]) == ["page"]


FILTERS_ARE = (
    "Unknown parameter; this list's filters are: low_stock, ordering, search, sku "
    "(and format, page, page_size)."
)


def test_the_unknown_parameter_names_the_filters_there_are(manager_api, shelf):
    response = manager_api.get(f"{BASE}/stock/?lowstock=true&q=tee")

    assert assert_error(response, 400, "invalid") == {
        "detail": "The request has invalid fields: lowstock, q.",
        "code": "invalid",
        "errors": {
            "lowstock": [FILTERS_ARE],
            "q": [FILTERS_ARE],
        },
    }


@pytest.mark.parametrize(
    "path, name, value",
    [
        (f"{BASE}/stock/", "low_stock", "maybe"),
        (f"{BASE}/stock/", "low_stock", "yes"),
        (f"{BASE}/movements/", "since", "yesterday"),
        (f"{BASE}/movements/", "kind", "theft"),
        (f"{BASE}/reservations/", "status", "held"),
        ("/api/v1/products/", "is_active", "maybe"),
        ("/api/v1/audit/", "since", "2026-13-01"),
    ],
)
def test_a_malformed_value_is_400_naming_it(manager_api, shelf, path, name, value):
    response = manager_api.get(path, {name: value})

    assert list(assert_error(response, 400, "invalid")["errors"]) == [name]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("true", ["CAP", "MUG"]),
        ("TRUE", ["CAP", "MUG"]),
        ("1", ["CAP", "MUG"]),
        ("0", ["HAT", "TEE"]),
        ("", ["CAP", "HAT", "MUG", "TEE"]),
    ],
)
def test_low_stock_reads_true_false_one_zero_or_nothing(manager_api, shelf, value, expected):
    assert skus(manager_api.get(f"{BASE}/stock/", {"low_stock": value})) == expected


# --- The schema -------------------------------------------------------------------------


def test_the_schema_documents_the_stock_list_parameters(client, db):
    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    operation = schema["paths"]["/api/v1/stores/{code}/stock/"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}

    assert set(parameters) == {
        "code", "sku", "low_stock", "search", "ordering", "page", "page_size",
    }  # fmt: skip
    assert parameters["sku"]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert (parameters["sku"]["style"], parameters["sku"]["explode"]) == ("form", False)
    assert set(parameters["ordering"]["schema"]["items"]["enum"]) == {
        "sku", "-sku", "on_hand", "-on_hand", "available", "-available",
        "reorder_point", "-reorder_point", "updated_at", "-updated_at",
    }  # fmt: skip


@pytest.mark.parametrize("path", ["/api/v1/stores/{code}/movements/", "/api/v1/audit/"])
def test_the_schema_documents_the_cursor_paginated_lists_without_a_count(client, db, path):
    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    operation = schema["paths"][path]["get"]
    reference = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    page = schema["components"]["schemas"][reference.rsplit("/", 1)[1]]

    assert set(page["properties"]) == {"next", "previous", "results"}
    assert "there is no count field" in page["description"]
    parameters = {parameter["name"] for parameter in operation["parameters"]}
    assert {"cursor", "page_size"} <= parameters
    assert "page" not in parameters
    assert "400" in operation["responses"]
