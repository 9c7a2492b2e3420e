"""``GET|PUT /stores/{code}/stock/{sku}/gate/``: a store's managers read and switch a
level's flash-sale gate; while it is on, a sold-out answer asks no database."""

import pytest

from audit.models import AuditOutboxEntry
from stock.models import FlashSaleGate, Movement, StockLevel
from stores.models import Role
from tests.api import api_client, assert_error
from tests.factories import StaffFactory, UserFactory, member

from .conftest import GATE, NEEDS_REDIS

NOT_A_BOOLEAN = {"enabled": ["true or false is required (not a string or number)."]}
UNKNOWN = 'Unknown field; the body is {"enabled": true} or {"enabled": false}.'
OFF = {"enabled": False, "tokens": None, "admitted": None, "refunded": None}


def put(client, body, path=GATE, **kwargs):
    return client.put(path, body, format="json", **kwargs)


def gates() -> list[tuple[str, str]]:
    return list(FlashSaleGate.objects.values_list("level__store__code", "level__product__sku"))


# --- Who may read and switch a gate (either mode) --------------------------------------


@pytest.mark.parametrize("method", ["get", "put"])
def test_without_a_token_it_is_401(tee_in_berlin, method):
    response = getattr(api_client(), method)(GATE, {"enabled": True}, format="json")

    assert_error(response, 401)
    assert gates() == []


@pytest.mark.parametrize("role", [Role.CLERK, Role.VIEWER])
@pytest.mark.parametrize("method", ["get", "put"])
def test_clerks_and_viewers_are_refused_with_403(tee_in_berlin, berlin, role, method):
    client = api_client(member(f"berlin-{role}", berlin, role))

    response = getattr(client, method)(GATE, {"enabled": True}, format="json")

    body = assert_error(response, 403, "permission_denied")
    assert body["detail"] == "This needs the manager role in store berlin-01."
    assert gates() == []


@pytest.mark.parametrize(
    "path",
    [
        GATE,  # a store the user holds no role in answers as one that does not exist
        "/api/v1/stores/paris-01/stock/TEE/gate/",
        "/api/v1/stores/berlin-01/stock/NO-SUCH-SKU/gate/",
    ],
    ids=["not a member", "unknown store", "unknown sku"],
)
@pytest.mark.parametrize("method", ["get", "put"])
def test_what_the_user_cannot_see_is_404(tee_in_berlin, manager, path, method):
    client = api_client(UserFactory(username="stranger")) if path == GATE else api_client(manager)

    response = getattr(client, method)(path, {"enabled": True}, format="json")

    assert_error(response, 404, "not_found")
    assert gates() == []


def test_staff_with_the_stock_change_permission_switch_it_in_every_store(tee_in_berlin):
    staff = StaffFactory(username="ops", permissions=["stock.change_stocklevel"])

    response = put(api_client(staff), {"enabled": True})

    assert response.status_code == 200, response.content
    assert gates() == [("berlin-01", "TEE")]


def test_options_describe_the_put_body_to_managers_only(tee_in_berlin, manager_api, clerk_api):
    described = manager_api.options(GATE)
    refused = clerk_api.options(GATE)

    assert described.status_code == 200
    assert list(described.json()["actions"]["PUT"]) == ["enabled"]
    assert refused.status_code == 200
    assert "actions" not in refused.json()


# --- What a PUT takes (either mode) ------------------------------------------------------


@pytest.mark.parametrize(
    "body, errors",
    [
        ({"enabled": "true"}, NOT_A_BOOLEAN),
        ({"enabled": 1}, NOT_A_BOOLEAN),
        ({"enabled": 0}, NOT_A_BOOLEAN),
        ({"enabled": None}, {"enabled": ["This field may not be null."]}),
        ({"enabled": [True]}, NOT_A_BOOLEAN),
        ({"enabled": {"on": True}}, NOT_A_BOOLEAN),
        ({}, {"enabled": ["This field is required."]}),
        (
            {"enabled": True, "tokens": 500},
            {"tokens": [UNKNOWN]},
        ),
        (
            {"enabled": "yes", "gate": {"enabled": True}},
            {
                **NOT_A_BOOLEAN,
                "gate": [UNKNOWN],
            },
        ),
        (
            [{"enabled": True}],
            {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]},
        ),
        (True, {"non_field_errors": ["Invalid data. Expected a dictionary, but got bool."]}),
    ],
    ids=[
        "string", "one", "zero", "null", "list", "object", "missing", "unknown field",
        "bad and unknown", "a list", "a bare boolean",
    ],
)  # fmt: skip
def test_anything_but_a_json_boolean_is_400_and_switches_nothing(
    tee_in_berlin, manager_api, body, errors
):
    response = put(manager_api, body)

    assert assert_error(response, 400, "invalid")["errors"] == errors
    assert gates() == []
    assert not AuditOutboxEntry.objects.filter(action="stock.flash_gate").exists()


@pytest.mark.parametrize(
    "content, content_type, status, code",
    [
        (b'{"enabled": true, "enabled": false}', "application/json", 400, "parse_error"),
        (b'{"enabled": tru', "application/json", 400, "parse_error"),
        (b'{"enabled": "\\u0000"}', "application/json", 400, "invalid"),
        (b'{"enabled\x00": true}', "application/json", 400, "parse_error"),
        (b"enabled=true", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
    ids=["duplicate key", "malformed", "escaped NUL", "raw NUL", "a form"],
)
def test_malformed_bodies_are_refused_by_the_parsers(
    tee_in_berlin, manager_api, content, content_type, status, code
):
    response = manager_api.generic("PUT", GATE, content, content_type=content_type)

    assert_error(response, status, code)
    assert gates() == []


def test_a_body_over_the_upload_limit_is_413(tee_in_berlin, manager_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"enabled": True, "padding": "x" * 2000}

    assert_error(put(manager_api, body), 413, "payload_too_large")
    assert gates() == []


# --- Without Redis (the embedded mode) ---------------------------------------------------


def test_without_redis_a_put_records_the_gate_and_shows_no_tokens(
    without_redis, tee_in_berlin, manager_api
):
    response = put(manager_api, {"enabled": True})

    assert (response.status_code, response.json()) == (
        200,
        {"enabled": True, "tokens": None, "admitted": None, "refunded": None},
    )
    assert gates() == [("berlin-01", "TEE")]
    assert manager_api.get(GATE).json() == {**OFF, "enabled": True}
    assert list(
        AuditOutboxEntry.objects.filter(action="stock.flash_gate").values_list(
            "actor_username", "object_repr", "before", "after"
        )
    ) == [("manager", "TEE @ berlin-01", {"enabled": False}, {"enabled": True})]


def test_without_redis_purchases_go_to_the_database_with_the_gate_on(
    without_redis, tee_in_berlin, manager_api, clerk_api
):
    put(manager_api, {"enabled": True})

    response = clerk_api.post(GATE.replace("gate/", "purchase/"), {"quantity": 4}, format="json")

    assert (response.status_code, response.json()["available"]) == (200, 6)


def test_switching_to_what_it_is_answers_200_and_records_nothing(
    without_redis, tee_in_berlin, manager_api
):
    put(manager_api, {"enabled": True})

    response = put(manager_api, {"enabled": True})
    off = put(manager_api, {"enabled": False})
    off_again = put(manager_api, {"enabled": False})

    assert (response.status_code, response.json()["enabled"]) == (200, True)
    assert (off.json(), off_again.json()) == (OFF, OFF)
    assert list(
        AuditOutboxEntry.objects.filter(action="stock.flash_gate")
        .order_by("pk")
        .values_list("after", flat=True)
    ) == [{"enabled": True}, {"enabled": False}]


def test_a_gate_on_a_product_never_stocked_creates_its_zero_level(
    without_redis, berlin, tee, manager_api
):
    response = put(manager_api, {"enabled": True})

    assert response.status_code == 200
    level = StockLevel.objects.get(store=berlin, product=tee)
    assert (level.on_hand, level.version) == (0, 0)
    assert not Movement.objects.exists()


# --- With Redis: the tokens -------------------------------------------------------------


RESERVATIONS = "/api/v1/stores/berlin-01/reservations/"


def purchase(client, quantity):
    return client.post(GATE.replace("gate/", "purchase/"), {"quantity": quantity}, format="json")


@NEEDS_REDIS
@pytest.mark.django_db(transaction=True)
def test_switched_on_it_holds_a_token_per_available_unit(tee_in_berlin, manager_api):
    response = put(manager_api, {"enabled": True})

    assert (response.status_code, response.json()) == (
        200,
        {"enabled": True, "tokens": 10, "admitted": 0, "refunded": 0},
    )
    assert manager_api.get(GATE).json() == response.json()


@NEEDS_REDIS
@pytest.mark.django_db(transaction=True)
def test_purchases_take_tokens_and_refusals_are_counted(tee_in_berlin, manager_api, clerk_api):
    put(manager_api, {"enabled": True})

    bought = purchase(clerk_api, 4)
    refused = purchase(clerk_api, 7)

    assert (bought.status_code, refused.status_code) == (200, 409)
    assert manager_api.get(GATE).json() == {
        "enabled": True,
        "tokens": StockLevel.objects.get().available,
        "admitted": 1,
        "refunded": 0,
    }


@NEEDS_REDIS
@pytest.mark.django_db(transaction=True)
def test_switched_off_redis_forgets_it_and_buyers_go_to_the_database(
    tee_in_berlin, manager_api, clerk_api, record_statements
):
    put(manager_api, {"enabled": True})
    assert purchase(clerk_api, 10).status_code == 200  # sold out: the gate has no token

    response = put(manager_api, {"enabled": False})
    with record_statements() as statements:
        refused = purchase(clerk_api, 1)

    assert (response.status_code, response.json()) == (200, OFF)
    assert gates() == []
    assert_error(refused, 409, "insufficient_stock")
    assert any(statement.touches("stock_stocklevel") for statement in statements)


@NEEDS_REDIS
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "sold_out_seconds", [0, 60], ids=["asks Redis", "remembered by the process"]
)
def test_a_sold_out_purchase_through_the_api_makes_no_sql_query(
    tee_in_berlin, manager_api, clerk_api, record_statements, settings, sold_out_seconds
):
    """The lookups (token, store role, product) come from the lookup cache once the
    process has seen them, and the gate refuses before the database: no statement."""
    settings.FLASH_GATE_SOLD_OUT_SECONDS = sold_out_seconds
    put(manager_api, {"enabled": True})
    assert purchase(clerk_api, 10).status_code == 200  # warms the lookups; sells out

    with record_statements() as statements:
        response = purchase(clerk_api, 1)

    body = assert_error(response, 409, "insufficient_stock")
    assert (body["available"], body["shortages"]) == (
        0,
        [{"sku": "TEE", "requested": 1, "available": 0}],
    )
    assert [statement.sql for statement in statements] == []
    assert StockLevel.objects.get().available == 0


@NEEDS_REDIS
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "sold_out_seconds", [0, 60], ids=["asks Redis", "remembered by the process"]
)
def test_a_gate_refusal_of_a_cart_names_every_short_line_as_the_database_does(
    tee_in_berlin, mug_in_berlin, manager_api, clerk_api, settings, sold_out_seconds
):
    """A reservation of a gated level and an ungated one, both short: the gate's 409
    names both lines, as the database's does, not only the one it admits."""
    settings.FLASH_GATE_SOLD_OUT_SECONDS = sold_out_seconds
    cart = {"lines": [{"sku": "TEE", "quantity": 1}, {"sku": "MUG", "quantity": 2}]}
    assert purchase(clerk_api, 10).status_code == 200  # the T-shirts sell out
    by_the_database = clerk_api.post(RESERVATIONS, cart, format="json")

    put(manager_api, {"enabled": True})
    by_the_gate = clerk_api.post(RESERVATIONS, cart, format="json")

    body = assert_error(by_the_gate, 409, "insufficient_stock")
    assert body == assert_error(by_the_database, 409, "insufficient_stock")
    assert [line["sku"] for line in body["shortages"]] == ["TEE", "MUG"]
