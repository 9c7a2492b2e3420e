"""Bad input to every stock write endpoint answers 400 with {detail, code, errors} and
changes nothing: the level's version and the ledger stay as they were, and no bulk job
is queued."""

import pytest

from stock.models import BulkJob, Movement, Reservation, StockLevel
from stock.services import stock_receive
from stores.models import Role
from tests.api import api_client, assert_error
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory

BAD_NUMBERS = {
    "negative": -1,
    "zero": 0,
    "huge": 1_000_001,
    "float": 1.5,
    "integral float": 2.0,
    "string": "1",
    "boolean": True,
    "null": None,
    "list": [1],
}

# endpoint -> (path suffix, a valid body, the numeric field, which BAD_NUMBERS are valid)
ENDPOINTS = {
    "receive": ("stock/TEE/receive/", {"quantity": 1}, "quantity", set()),
    "adjust": ("stock/TEE/adjust/", {"delta": 1, "reason": "found"}, "delta", {"negative"}),
    "set": ("stock/TEE/set/", {"on_hand": 1}, "on_hand", {"zero"}),
    "purchase": ("stock/TEE/purchase/", {"quantity": 1}, "quantity", set()),
}


@pytest.fixture
def setup(db):
    store, product = StoreFactory(code="berlin-01"), ProductFactory(sku="TEE")
    stock_receive(store=store, product=product, quantity=10)
    manager = UserFactory()
    MembershipFactory(user=manager, store=store, role=Role.MANAGER)
    MembershipFactory(user=manager, store=StoreFactory(code="hamburg-01"), role=Role.VIEWER)
    return api_client(manager)


def assert_nothing_changed():
    level = StockLevel.objects.get(store__code="berlin-01", product__sku="TEE")
    assert (level.on_hand, level.reserved, level.version) == (10, 0, 1)
    assert Movement.objects.count() == 1
    assert not StockLevel.objects.filter(store__code="hamburg-01").exists()
    assert not BulkJob.objects.exists()


def post(client, suffix, body, **kwargs):
    return client.post(f"/api/v1/stores/berlin-01/{suffix}", body, format="json", **kwargs)


CASES = [
    (endpoint, label)
    for endpoint, (_, _, _, valid) in ENDPOINTS.items()
    for label in BAD_NUMBERS
    if label not in valid
]


@pytest.mark.parametrize("endpoint, label", CASES, ids=[f"{e}-{v}" for e, v in CASES])
def test_a_bad_number_is_refused(setup, endpoint, label):
    suffix, body, field, _ = ENDPOINTS[endpoint]

    response = post(setup, suffix, {**body, field: BAD_NUMBERS[label]})

    assert list(assert_error(response, 400, "invalid")["errors"]) == [field]
    assert_nothing_changed()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_missing_fields_are_named(setup, endpoint):
    suffix, body, _, _ = ENDPOINTS[endpoint]

    response = post(setup, suffix, {})

    required = {"receive": ["quantity"], "adjust": ["delta", "reason"]}.get(endpoint)
    assert sorted(assert_error(response, 400)["errors"]) == (required or [list(body)[0]])
    assert_nothing_changed()


MULTI_LINE_ENDPOINTS = {"transfer": "transfers/", "reserve": "reservations/", "bulk": "stock/bulk/"}


@pytest.mark.parametrize("endpoint", [*ENDPOINTS, *MULTI_LINE_ENDPOINTS])
@pytest.mark.parametrize("raw", ['{"quantity": 1', "[1, 2"], ids=["truncated json", "broken array"])
def test_malformed_json_is_400(setup, endpoint, raw):
    suffix = ENDPOINTS[endpoint][0] if endpoint in ENDPOINTS else MULTI_LINE_ENDPOINTS[endpoint]

    response = setup.post(
        f"/api/v1/stores/berlin-01/{suffix}", raw, content_type="application/json"
    )

    assert_error(response, 400, "parse_error")
    assert_nothing_changed()


@pytest.mark.parametrize("endpoint", [*ENDPOINTS, *MULTI_LINE_ENDPOINTS])
@pytest.mark.parametrize(
    "raw, content_type",
    [
        ("quantity=1", "application/x-www-form-urlencoded"),
        ("quantity: 1", "text/plain"),
    ],
    ids=["form", "text"],
)
def test_a_body_that_is_not_json_is_415(setup, endpoint, raw, content_type):
    suffix = ENDPOINTS[endpoint][0] if endpoint in ENDPOINTS else MULTI_LINE_ENDPOINTS[endpoint]

    response = setup.post(f"/api/v1/stores/berlin-01/{suffix}", raw, content_type=content_type)

    assert assert_error(response, 415, "unsupported_media_type") == {
        "detail": f'Unsupported media type "{content_type}" in request. '
        "Send the body as JSON (Content-Type: application/json).",
        "code": "unsupported_media_type",
    }
    assert_nothing_changed()


@pytest.mark.parametrize("endpoint", [*ENDPOINTS, *MULTI_LINE_ENDPOINTS])
def test_a_body_that_is_not_an_object_is_400(setup, endpoint):
    suffix = ENDPOINTS[endpoint][0] if endpoint in ENDPOINTS else MULTI_LINE_ENDPOINTS[endpoint]

    response = post(setup, suffix, [1, 2])

    assert_error(response, 400)
    assert_nothing_changed()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"delta": 1, "reason": "stolen"}, "reason"),
        ({"delta": 1, "reason": None}, "reason"),
        ({"delta": 1, "reason": "found", "note": "x" * 1001}, "note"),
    ],
)
def test_adjust_refuses_a_bad_reason_or_note(setup, body, field):
    response = post(setup, "stock/TEE/adjust/", body)

    assert list(assert_error(response, 400)["errors"]) == [field]
    assert_nothing_changed()


@pytest.mark.parametrize("endpoint", ["receive", "purchase"])
def test_an_overlong_reference_is_refused(setup, endpoint):
    response = post(setup, ENDPOINTS[endpoint][0], {"quantity": 1, "reference": "r" * 256})

    assert list(assert_error(response, 400)["errors"]) == ["reference"]
    assert_nothing_changed()


@pytest.mark.parametrize("value", [-1, 1_000_001, 1.5, "3", False, None])
def test_a_bad_reorder_point_is_refused(setup, value):
    response = setup.patch(
        "/api/v1/stores/berlin-01/stock/TEE/", {"reorder_point": value}, format="json"
    )

    assert list(assert_error(response, 400)["errors"]) == ["reorder_point"]
    assert StockLevel.objects.get(store__code="berlin-01").reorder_point == 0


@pytest.mark.parametrize("header", ['"abc"', "1 2", '"-1"', ""])
def test_a_malformed_if_match_is_refused(setup, header):
    response = post(setup, "stock/TEE/set/", {"on_hand": 3}, HTTP_IF_MATCH=header)

    assert list(assert_error(response, 400)["errors"]) == ["If-Match"]
    assert_nothing_changed()


TRANSFER_LINE = {"sku": "TEE", "quantity": 1}


@pytest.mark.parametrize(
    "body, field",
    [
        *[
            ({"to_store": "hamburg-01", "lines": [{"sku": "TEE", "quantity": bad}]}, "lines")
            for label, bad in BAD_NUMBERS.items()
        ],
        ({"to_store": "hamburg-01", "lines": []}, "lines"),
        ({"to_store": "hamburg-01", "lines": None}, "lines"),
        ({"to_store": "hamburg-01", "lines": TRANSFER_LINE}, "lines"),
        ({"to_store": "hamburg-01", "lines": [{"sku": "NOPE", "quantity": 1}]}, "lines"),
        ({"to_store": "hamburg-01", "lines": [{"quantity": 1}]}, "lines"),
        ({"to_store": "hamburg-01", "lines": ["TEE"]}, "lines"),
        ({"to_store": "nowhere-01", "lines": [TRANSFER_LINE]}, "to_store"),
        ({"to_store": None, "lines": [TRANSFER_LINE]}, "to_store"),
        ({"lines": [TRANSFER_LINE]}, "to_store"),
        ({"to_store": "berlin-01", "lines": [TRANSFER_LINE]}, "non_field_errors"),
        (
            {
                "to_store": "hamburg-01",
                "lines": [{"sku": "TEE", "quantity": 600_000}, {"sku": "TEE", "quantity": 600_000}],
            },
            "non_field_errors",
        ),
    ],
)
def test_a_bad_transfer_is_refused(setup, body, field):
    response = post(setup, "transfers/", body)

    assert list(assert_error(response, 400)["errors"]) == [field]
    assert_nothing_changed()


@pytest.mark.parametrize("field", ["quantity", "ttl_seconds"])
@pytest.mark.parametrize("label", [label for label in BAD_NUMBERS if label != "list"])
def test_a_reservation_with_a_bad_number_is_refused(setup, field, label):
    line = {"sku": "TEE", "quantity": 1}
    body = {"lines": [line], "ttl_seconds": 60}
    if field == "quantity":
        line["quantity"] = BAD_NUMBERS[label]
    else:
        body["ttl_seconds"] = BAD_NUMBERS[label]

    response = post(setup, "reservations/", body)

    assert list(assert_error(response, 400)["errors"]) == [
        "lines" if field == "quantity" else "ttl_seconds"
    ]
    assert_nothing_changed()
    assert not Reservation.objects.exists()


# A bulk job's items are checked by the service, each bad one listed by its index.
BULK_FIELDS = {
    # field -> (mode, which BAD_NUMBERS are valid there)
    "on_hand": ("set", {"zero"}),
    "delta": ("adjust", {"negative"}),
    "expected_on_hand": ("set", {"zero", "null"}),  # null: no compare-and-set
}
BULK_CASES = [
    (field, label)
    for field, (_, valid) in BULK_FIELDS.items()
    for label in BAD_NUMBERS
    if label not in valid
]


@pytest.mark.parametrize("field, label", BULK_CASES, ids=[f"{f}-{v}" for f, v in BULK_CASES])
def test_a_bulk_item_with_a_bad_number_is_listed(setup, field, label):
    mode = BULK_FIELDS[field][0]
    item = {"sku": "TEE", "on_hand" if mode == "set" else "delta": 1, field: BAD_NUMBERS[label]}

    response = post(setup, "stock/bulk/", {"mode": mode, "items": [item]})

    [error] = assert_error(response, 400, "invalid")["errors"]
    assert (error["index"], error["sku"], error["code"]) == (0, "TEE", "invalid")
    assert error["detail"].startswith(f"{field} must be a"), error
    assert_nothing_changed()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"items": [{"sku": "TEE", "on_hand": 1}]}, "mode"),
        ({"mode": "set", "items": []}, "items"),
        ({"mode": "set", "items": {"sku": "TEE", "on_hand": 1}}, "items"),
        ({"mode": "set", "items": [1]}, "items"),
        ({"mode": "set", "items": [{"sku": "TEE", "on_hand": 1}], "reason": 1}, "reason"),
        (
            {"mode": "set", "items": [{"sku": "TEE", "on_hand": 1}], "error_policy": None},
            "error_policy",
        ),
    ],
)
def test_a_bad_bulk_job_names_its_field(setup, body, field):
    response = post(setup, "stock/bulk/", body)

    assert list(assert_error(response, 400, "invalid")["errors"]) == [field]
    assert_nothing_changed()
