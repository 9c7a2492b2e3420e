"""Hostile input answers 4xx, never 500, and changes nothing: a body over the size limit,
JSON nested too deeply or with a key twice, and null characters in a path, a query or a
bulk job's items.

The null-character cases answered 500 on PostgreSQL only (psycopg2 refuses a NUL in a
query parameter); they run in both modes, so SQLite keeps the same answers.
"""

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from stock.models import BulkJob, Movement, StockLevel
from stock.services import stock_receive
from stores.models import Membership, Role
from tests.api import api_client, assert_error
from tests.factories import (
    TEST_PASSWORD,
    MembershipFactory,
    ProductFactory,
    StoreFactory,
    UserFactory,
)

BERLIN = "/api/v1/stores/berlin-01"
PURCHASE = f"{BERLIN}/stock/TEE/purchase/"
BULK = f"{BERLIN}/stock/bulk/"
TOKEN = "/api/v1/auth/token/"
# Over Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), which the API answers with 413.
THREE_MEGABYTES = json.dumps({"quantity": 1, "reference": "x" * 3_000_000})
# Over BULK_MAX_BODY_BYTES (4 MiB), the limit of POST .../stock/bulk/ alone.
FIVE_MEGABYTES = json.dumps(
    {"mode": "set", "items": [{"sku": "TEE", "on_hand": 1}], "reason": "x" * 5_000_000}
)


@pytest.fixture
def manager(db):
    store, product = StoreFactory(code="berlin-01"), ProductFactory(sku="TEE")
    stock_receive(store=store, product=product, quantity=10)
    user = UserFactory(username="manager")
    MembershipFactory(user=user, store=store, role=Role.MANAGER)
    MembershipFactory(user=UserFactory(username="clerk"), store=store, role=Role.CLERK)
    return user


@pytest.fixture
def superuser(manager):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def assert_nothing_changed():
    level = StockLevel.objects.get(store__code="berlin-01", product__sku="TEE")
    assert (level.on_hand, level.reserved, level.version) == (10, 0, 1)
    assert Movement.objects.count() == 1
    assert Membership.objects.filter(store__code="berlin-01").count() == 2
    assert not BulkJob.objects.exists()


def post_raw(client, path, body: str, **extra):
    return client.post(path, body, content_type="application/json", **extra)


# --- bodies ------------------------------------------------------------------------------


def test_a_body_over_the_limit_answers_413(manager):
    response = post_raw(api_client(manager), PURCHASE, THREE_MEGABYTES)

    assert assert_error(response, 413, "payload_too_large") == {
        "detail": "The request body is larger than the limit of 2621440 bytes.",
        "code": "payload_too_large",
    }
    assert_nothing_changed()


def test_a_body_over_the_limit_with_an_idempotency_key_answers_413(manager):
    client = api_client(manager)

    first = post_raw(client, PURCHASE, THREE_MEGABYTES, HTTP_IDEMPOTENCY_KEY="big-1")
    retried = post_raw(client, PURCHASE, THREE_MEGABYTES, HTTP_IDEMPOTENCY_KEY="big-1")

    assert_error(first, 413, "payload_too_large")
    assert_error(retried, 413, "payload_too_large")
    assert_nothing_changed()


@pytest.mark.parametrize("key", [None, "bulk-big-1"])
def test_a_bulk_body_over_its_own_limit_answers_413(manager, key):
    client = api_client(manager)
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}

    first = post_raw(client, BULK, FIVE_MEGABYTES, **headers)
    retried = post_raw(client, BULK, FIVE_MEGABYTES, **headers)

    assert assert_error(first, 413, "payload_too_large")["detail"] == (
        "The request body is larger than the limit of 4194304 bytes."
    )
    assert_error(retried, 413, "payload_too_large")
    assert_nothing_changed()


def test_an_anonymous_body_over_the_limit_at_the_token_endpoint_answers_413(manager):
    response = post_raw(APIClient(), TOKEN, THREE_MEGABYTES)

    assert_error(response, 413, "payload_too_large")


def test_the_limit_is_a_setting(manager, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = json.dumps({"quantity": 1, "reference": "x" * 100})

    response = post_raw(api_client(manager), PURCHASE, body)

    assert assert_error(response, 413, "payload_too_large")["detail"] == (
        "The request body is larger than the limit of 100 bytes."
    )
    assert_nothing_changed()


@pytest.mark.parametrize("path", [PURCHASE, BULK], ids=["purchase", "bulk"])
@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize(
    "opening, closing", [("[", "]"), ('{"a":', "}")], ids=["arrays", "objects"]
)
def test_json_nested_too_deeply_answers_400(manager, path, depth, opening, closing):
    body = opening * depth + "1" + closing * depth

    response = post_raw(api_client(manager), path, body)

    assert assert_error(response, 400, "parse_error") == {
        "detail": "JSON parse error - the body is nested too deeply.",
        "code": "parse_error",
        "errors": {"non_field_errors": ["JSON parse error - the body is nested too deeply."]},
    }
    assert_nothing_changed()


def test_json_nested_to_an_ordinary_depth_is_read_as_before(manager):
    body = {"quantity": 1, "reference": "r-1", "note": None}

    response = post_raw(api_client(manager), PURCHASE, json.dumps(body))

    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "path, body, key",
    [
        (PURCHASE, '{"quantity": 1, "quantity": 2}', "quantity"),
        (f"{BERLIN}/stock/TEE/adjust/", '{"delta": -1, "reason": "lost", "delta": 5}', "delta"),
        (
            f"{BERLIN}/reservations/",
            '{"lines": [{"sku": "TEE", "quantity": 1, "quantity": 9}]}',
            "quantity",
        ),
        (
            f"{BERLIN}/members/",
            '{"username": "clerk", "role": "viewer", "role": "manager"}',
            "role",
        ),
        (BULK, '{"mode": "set", "items": [{"sku": "TEE", "on_hand": 1, "on_hand": 9}]}', "on_hand"),
    ],
    ids=["purchase", "adjust", "a reservation line", "members", "a bulk item"],
)
def test_a_key_twice_in_one_object_answers_400_instead_of_the_last_one_winning(
    manager, path, body, key
):
    response = post_raw(api_client(manager), path, body)

    detail = f'JSON parse error - duplicate key "{key}" in an object'
    assert assert_error(response, 400, "parse_error") == {
        "detail": detail,
        "code": "parse_error",
        "errors": {"non_field_errors": [detail]},
    }
    assert_nothing_changed()
    assert Membership.objects.get(user__username="clerk").role == Role.CLERK


def test_the_same_key_in_two_objects_is_no_duplicate(manager):
    body = '{"lines": [{"sku": "TEE", "quantity": 1}, {"sku": "TEE", "quantity": 2}]}'

    response = post_raw(api_client(manager), f"{BERLIN}/reservations/", body)

    assert response.status_code == 201, response.content


# --- null characters ---------------------------------------------------------------------

API_PATHS_WITH_A_NUL = [
    ("get", "/api/v1/stores/%00/"),
    ("patch", "/api/v1/stores/%00/"),
    ("get", "/api/v1/stores/berlin%00/members/"),
    ("post", "/api/v1/stores/%00/members/"),
    ("delete", f"{BERLIN}/members/%00/"),
    ("delete", f"{BERLIN}/members/clerk%00/"),
    ("get", "/api/v1/stores/%00/stock/"),
    ("get", f"{BERLIN}/stock/%00/"),
    ("patch", f"{BERLIN}/stock/TEE%00/"),
    ("post", f"{BERLIN}/stock/%00/purchase/"),
    ("post", f"{BERLIN}/stock/%00/receive/"),
    ("post", "/api/v1/stores/%00/transfers/"),
    ("post", "/api/v1/stores/%00/stock/bulk/"),
    ("get", "/api/v1/jobs/%00/"),
    ("get", "/api/v1/jobs/00000000-0000-0000-0000-00000000000%00/"),
    ("get", "/api/v1/stores/%00/reservations/"),
    ("get", "/api/v1/stores/%00/movements/"),
    ("get", "/api/v1/products/%00/"),
    ("patch", "/api/v1/products/%00/"),
    ("get", "/api/v1/products/%00/availability/"),
]


@pytest.mark.parametrize("user", ["manager", "superuser"])
@pytest.mark.parametrize("method, path", API_PATHS_WITH_A_NUL)
def test_a_null_character_in_an_api_path_answers_404(request, user, method, path):
    client = api_client(request.getfixturevalue(user))

    response = getattr(client, method)(path, {"quantity": 1}, format="json")

    assert assert_error(response, 404, "not_found") == {"detail": "Not found.", "code": "not_found"}
    assert_nothing_changed()


API_FILTERS_WITH_A_NUL = [
    (f"{BERLIN}/stock/?sku=TEE%00", "sku"),
    (f"{BERLIN}/stock/?search=%00", "search"),
    (f"{BERLIN}/movements/?sku=%00&kind=sale", "sku"),
    ("/api/v1/products/?search=%00", "search"),
    ("/api/v1/audit/?store=%00", "store"),
    ("/api/v1/audit/?actor=a%00b", "actor"),
]


@pytest.mark.parametrize("path, name", API_FILTERS_WITH_A_NUL)
def test_a_null_character_in_an_api_filter_answers_400_naming_it(superuser, path, name):
    """The filtersets' form fields refuse a NUL before any query runs."""
    response = api_client(superuser).get(path)

    assert assert_error(response, 400, "invalid") == {
        "detail": f"The request has invalid fields: {name}.",
        "code": "invalid",
        "errors": {name: ["Null characters are not allowed."]},
    }


@pytest.mark.parametrize("query, name", [("?search=%00", "search"), ("?x%00=1", "x\x00")])
def test_a_null_character_in_a_parameter_no_api_list_reads_answers_400_naming_it(
    superuser, query, name
):
    """As any unknown parameter does: the store list has no filters."""
    response = api_client(superuser).get(f"/api/v1/stores/{query}")

    assert list(assert_error(response, 400, "invalid")["errors"]) == [name]


@pytest.mark.parametrize(
    "item",
    [{"sku": "TEE\x00", "on_hand": 1}, {"sku": "TEE", "on\x00hand": 1}],
    ids=["sku", "field"],
)
def test_a_null_character_in_a_bulk_item_is_listed(manager, item):
    """PostgreSQL cannot hold a NUL: a SKU with one is refused before any lookup."""
    response = api_client(manager).post(
        BULK, {"mode": "set", "items": [item]}, format="json", HTTP_IDEMPOTENCY_KEY="nul-1"
    )

    [error] = assert_error(response, 400, "invalid")["errors"]
    assert (error["index"], error["sku"], error["code"]) == (0, item["sku"], "invalid")
    assert_nothing_changed()


@pytest.mark.parametrize("field", ["mode", "reason", "error_policy"])
def test_a_null_character_in_a_bulk_job_field_names_it(manager, field):
    body = {"mode": "set", "items": [{"sku": "TEE", "on_hand": 1}], field: "set\x00"}

    response = api_client(manager).post(BULK, body, format="json")

    assert list(assert_error(response, 400, "invalid")["errors"]) == [field]
    assert_nothing_changed()


def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=TEST_PASSWORD)
    return client


@pytest.mark.parametrize("user", ["manager", "superuser"])
@pytest.mark.parametrize(
    "path, status",
    [
        ("/stores/%00/low-stock/", 404),
        ("/stores/berlin-01%00/low-stock/", 404),
        ("/admin/stock/stocklevel/?store=%00", 400),
        ("/admin/stock/stocklevel/?q=%00", 400),
        ("/admin/stock/movement/?store=berlin-01%00", 400),
        ("/admin/stock/reservation/?store=%00", 400),
        ("/admin/audit/auditevent/?store=%00", 400),
        ("/admin/stores/store/?q=%00", 400),
        ("/admin/catalog/product/?q=%00", 400),
        ("/admin/stores/store/%00/change/", 404),
    ],
)
def test_a_null_character_in_a_page_or_an_admin_filter_answers_4xx(request, user, path, status):
    client = logged_in(request.getfixturevalue(user))

    response = client.get(path)

    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")


def test_an_escaped_percent_sign_before_00_is_no_null_character(superuser):
    response = logged_in(superuser).get("/admin/stock/stocklevel/?q=%2500")

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


# --- headers -----------------------------------------------------------------------------


def test_a_null_character_in_an_idempotency_key_answers_400(manager):
    response = api_client(manager).post(
        PURCHASE, {"quantity": 1}, format="json", HTTP_IDEMPOTENCY_KEY="order\x00-1"
    )

    assert list(assert_error(response, 400)["errors"]) == ["Idempotency-Key"]
    assert_nothing_changed()


@pytest.mark.parametrize("key", ["abc\x00def", "cl\xe9"])
def test_a_token_no_key_can_match_answers_401(manager, key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    assert_error(client.post(PURCHASE, {"quantity": 1}, format="json"), 401)
    assert_nothing_changed()


def test_a_token_sent_as_bearer_is_told_the_scheme(manager):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer 0123456789abcdef")

    body = assert_error(client.post(PURCHASE, {"quantity": 1}, format="json"), 401)

    assert body["detail"] == "Send the API token as 'Authorization: Token <key>', not Bearer."
    assert_nothing_changed()
