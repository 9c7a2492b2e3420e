"""Conditional GET of one stock level: ``If-None-Match`` with the current ETag answers
304 with no body, from the cache as from the database."""

import pytest

from stock.models import StockLevel
from stock.services import stock_purchase, stock_receive
from tests.api import api_client, assert_error
from tests.factories import UserFactory

LEVEL = "/api/v1/stores/berlin-01/stock/TEE/"


@pytest.fixture
def stocked(berlin, tee):
    """10 TEE in berlin-01, version 1."""
    stock_receive(store=berlin, product=tee, quantity=10)


def assert_not_modified(response, etag: str, cache: str):
    assert response.status_code == 304
    assert response.content == b""
    assert (response["ETag"], response["X-Cache"]) == (etag, cache)


def test_the_current_etag_answers_304_from_the_database_and_from_the_cache(manager_api, stocked):
    miss = manager_api.get(LEVEL, HTTP_IF_NONE_MATCH='"1"')
    hit = manager_api.get(LEVEL, HTTP_IF_NONE_MATCH='"1"')

    assert_not_modified(miss, '"1"', "MISS")
    assert_not_modified(hit, '"1"', "HIT")


@pytest.mark.parametrize("header", ['W/"1"', '"0", "1"', '"7",W/"1"', ' "1" ', "1", "*"], ids=repr)
def test_a_weak_tag_a_list_or_a_star_matches_too(manager_api, stocked, header):
    assert_not_modified(manager_api.get(LEVEL, HTTP_IF_NONE_MATCH=header), '"1"', "MISS")


@pytest.mark.parametrize("header", ['"0"', 'W/"2"', '"0", "2"', "", "garbage", '"1.0"'], ids=repr)
def test_another_or_a_malformed_tag_answers_the_level(manager_api, stocked, header):
    response = manager_api.get(LEVEL, HTTP_IF_NONE_MATCH=header)

    assert response.status_code == 200
    assert (response.json()["version"], response["ETag"]) == (1, '"1"')


def test_after_a_change_the_old_etag_answers_the_new_level(
    manager_api, berlin, tee, stocked, django_capture_on_commit_callbacks
):
    etag = manager_api.get(LEVEL)["ETag"]
    with django_capture_on_commit_callbacks(execute=True):  # the cache is refreshed at commit
        stock_purchase(store=berlin, product=tee, quantity=1)

    response = manager_api.get(LEVEL, HTTP_IF_NONE_MATCH=etag)

    assert (response.status_code, response.json()["on_hand"], response["ETag"]) == (
        200,
        9,
        '"2"',
    )


def test_a_never_stocked_product_matches_its_zero_version(manager_api, berlin, tee):
    assert_not_modified(manager_api.get(LEVEL, HTTP_IF_NONE_MATCH='"0"'), '"0"', "MISS")
    assert not StockLevel.objects.exists()


def test_a_304_still_needs_the_access_a_read_needs(stocked):
    stranger = api_client(UserFactory(username="stranger"))

    assert_error(stranger.get(LEVEL, HTTP_IF_NONE_MATCH='"1"'), 404, "not_found")
