"""The product list's cache entries are keyed on the parameters that choose the page
(``search``, ``is_active``, the page, the page size as served), not on the raw URL: a
client writing the same page in several ways (``?page=01``, an empty ``?search=``) must
not fill the cache with copies of one answer, and an unknown parameter is a 400 that
fills nothing."""

from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from catalog.models import Product
from tests.api import api_client, assert_error
from tests.factories import UserFactory


def catalog_cache_events() -> dict[str, float]:
    return {
        event: REGISTRY.get_sample_value(
            "inventory_cache_events_total", {"cache": "catalog", "event": event}
        )
        or 0.0
        for event in ("hit", "miss", "fill")
    }


def events_since(before: dict[str, float]) -> dict[str, float]:
    after = catalog_cache_events()
    return {event: after[event] - before[event] for event in after}


def skus(response) -> list[str]:
    assert response.status_code == 200, response.content[:300]
    return [product["sku"] for product in response.json()["results"]]


def test_parameters_that_change_nothing_share_one_cache_entry(catalog):
    client = api_client(UserFactory())
    before = catalog_cache_events()

    answers = [
        client.get(f"/api/v1/products/{query}")
        for query in [
            "",
            "?page=1",
            "?page=01",
            "?page_size=50",  # the default
            "?search=",
            "?search=&page=1&format=json",
        ]
    ]

    assert [skus(answer) for answer in answers] == [["MUG-RED", "TEE-BLUE", "TEE-RED"]] * 6
    assert events_since(before) == {"hit": 5, "miss": 1, "fill": 1}


@pytest.mark.parametrize(
    "query, unknown",
    [("?x=1", "x"), ("?utm_source=mail", "utm_source"), ("?search=mug&x=1", "x")],
)
def test_an_unknown_parameter_is_400_and_fills_no_entry(catalog, query, unknown):
    client = api_client(UserFactory())
    before = catalog_cache_events()

    response = client.get(f"/api/v1/products/{query}")

    assert list(assert_error(response, 400, "invalid")["errors"]) == [unknown]
    assert events_since(before) == {"hit": 0, "miss": 0, "fill": 0}


def test_a_page_size_above_the_cap_is_the_capped_page_size_entry(catalog):
    client = api_client(UserFactory())
    before = catalog_cache_events()

    capped = [client.get(f"/api/v1/products/?page_size={size}") for size in (200, 201, 100000)]

    assert [skus(answer) for answer in capped] == [["MUG-RED", "TEE-BLUE", "TEE-RED"]] * 3
    assert events_since(before) == {"hit": 2, "miss": 1, "fill": 1}


def test_filters_are_keyed_by_their_meaning_and_different_filters_by_theirs(catalog):
    client = api_client(UserFactory())
    before = catalog_cache_events()

    active = [client.get(f"/api/v1/products/?is_active={value}") for value in ("true", "True")]
    inactive = client.get("/api/v1/products/?is_active=false")
    searched = client.get("/api/v1/products/?search=mug")

    assert [skus(answer) for answer in active] == [["MUG-RED", "TEE-RED"]] * 2
    assert skus(inactive) == ["TEE-BLUE"]
    assert skus(searched) == ["MUG-RED"]
    assert events_since(before) == {"hit": 1, "miss": 3, "fill": 3}


def test_a_cached_page_carries_the_links_of_the_request_that_reads_it(catalog):
    client = api_client(UserFactory())
    client.get("/api/v1/products/?page_size=1&page=2")  # fills the entry

    hit = client.get("/api/v1/products/?page_size=1&page=2&search=")

    assert hit.json() == {
        "count": 3,
        "next": "http://testserver/api/v1/products/?page=3&page_size=1&search=",
        "previous": "http://testserver/api/v1/products/?page_size=1&search=",
        "results": [hit.json()["results"][0]],
    }
    assert skus(hit) == ["TEE-BLUE"]
    last = client.get("/api/v1/products/?page_size=1&page=last", HTTP_HOST="localhost")
    assert (last.json()["next"], last.json()["previous"]) == (
        None,
        "http://localhost/api/v1/products/?page=2&page_size=1",
    )


def test_a_product_change_still_retires_the_cached_pages(
    catalog, django_capture_on_commit_callbacks
):
    client = api_client(UserFactory())
    assert skus(client.get("/api/v1/products/")) == ["MUG-RED", "TEE-BLUE", "TEE-RED"]

    with django_capture_on_commit_callbacks(execute=True):
        Product.objects.create(sku="CAP", name="Cap", price=Decimal("5"))

    assert skus(client.get("/api/v1/products/")) == ["CAP", "MUG-RED", "TEE-BLUE", "TEE-RED"]


@pytest.mark.parametrize("query", ["?page=0", "?page=9", "?page=-1", "?page=abc", "?page=1.5"])
def test_a_page_that_cannot_be_served_is_404_and_is_not_cached(catalog, query):
    client = api_client(UserFactory())
    before = catalog_cache_events()

    response = client.get(f"/api/v1/products/{query}")

    assert_error(response, 404, "not_found")
    assert events_since(before)["fill"] == 0
