"""The whole permission matrix: every endpoint x role x own/other store, anonymous included.

- anonymous: 401 everywhere;
- a store the user is not a member of: 404, exactly as for a store that does not exist;
- a member whose role is too low: 403;
- otherwise the endpoint's success status. Staff act as managers of every store.
A refused stock write leaves the stock level as it was.
"""

import pytest

from stock.models import StockLevel
from stock.services import StockLine, reservation_create, stock_receive
from stores.models import Role
from tests.api import api_client, assert_error
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory

RANK = {"viewer": 0, "clerk": 1, "manager": 2, "staff": 3}

# (name, method, path under /api/v1/, body, role needed, status on success)
STORE_ENDPOINTS = [
    ("store detail", "get", "stores/{store}/", None, "viewer", 200),
    ("store update", "patch", "stores/{store}/", {"name": "Renamed"}, "staff", 200),
    ("member list", "get", "stores/{store}/members/", None, "manager", 200),
    (
        "member grant",
        "post",
        "stores/{store}/members/",
        {"username": "newcomer", "role": "viewer"},
        "manager",
        201,
    ),
    ("member revoke", "delete", "stores/{store}/members/leaver/", None, "manager", 204),
    ("stock list", "get", "stores/{store}/stock/", None, "viewer", 200),
    ("stock detail", "get", "stores/{store}/stock/TEE/", None, "viewer", 200),
    ("reorder point", "patch", "stores/{store}/stock/TEE/", {"reorder_point": 3}, "manager", 200),
    ("receive", "post", "stores/{store}/stock/TEE/receive/", {"quantity": 1}, "manager", 200),
    (
        "adjust",
        "post",
        "stores/{store}/stock/TEE/adjust/",
        {"delta": -1, "reason": "damaged"},
        "manager",
        200,
    ),
    ("set", "post", "stores/{store}/stock/TEE/set/", {"on_hand": 4}, "manager", 200),
    ("purchase", "post", "stores/{store}/stock/TEE/purchase/", {"quantity": 1}, "clerk", 200),
    (
        "transfer",
        "post",
        "stores/{store}/transfers/",
        {"to_store": "dest-01", "lines": [{"sku": "TEE", "quantity": 1}]},
        "manager",
        200,
    ),
    ("movements", "get", "stores/{store}/movements/", None, "viewer", 200),
    ("reservation list", "get", "stores/{store}/reservations/", None, "viewer", 200),
    (
        "reserve",
        "post",
        "stores/{store}/reservations/",
        {"lines": [{"sku": "TEE", "quantity": 1}]},
        "clerk",
        201,
    ),
    ("reservation detail", "get", "stores/{store}/reservations/{hold}/", None, "viewer", 200),
    ("commit", "post", "stores/{store}/reservations/{hold}/commit/", None, "clerk", 200),
    ("release", "post", "stores/{store}/reservations/{hold}/release/", None, "clerk", 200),
]

GLOBAL_ENDPOINTS = [
    ("store list", "get", "stores/", None, "viewer", 200),
    ("store create", "post", "stores/", {"code": "new-01", "name": "New"}, "staff", 201),
    ("product list", "get", "products/", None, "viewer", 200),
    (
        "product create",
        "post",
        "products/",
        {"sku": "NEW-1", "name": "New", "price": "1.00"},
        "staff",
        201,
    ),
    ("product detail", "get", "products/TEE/", None, "viewer", 200),
    ("product update", "patch", "products/TEE/", {"name": "Renamed"}, "staff", 200),
    ("availability", "get", "products/TEE/availability/", None, "viewer", 200),
]

ROLES = ["anonymous", "viewer", "clerk", "manager", "staff"]


@pytest.fixture
def world(db):
    """Own store (where each role-user holds that role), another store they are not
    members of, and a destination store every role-user can see."""
    own, other = StoreFactory(code="own-01"), StoreFactory(code="other-01")
    destination = StoreFactory(code="dest-01")
    product = ProductFactory(sku="TEE")
    holds = {}
    for store in (own, other):
        stock_receive(store=store, product=product, quantity=12)
        holds[store.code] = reservation_create(store=store, lines=[StockLine(product, 2)])
        MembershipFactory(user=UserFactory(username="leaver"), store=store, role=Role.VIEWER)
    UserFactory(username="newcomer")
    users = {"anonymous": None, "staff": UserFactory(username="staffer", is_staff=True)}
    for role in ("viewer", "clerk", "manager"):
        users[role] = UserFactory(username=role)
        MembershipFactory(user=users[role], store=own, role=role)
        MembershipFactory(user=users[role], store=destination, role=Role.VIEWER)
    return {"own": own, "other": other, "product": product, "users": users, "holds": holds}


def expected_status(role, needed, success, *, store_visible=True):
    if role == "anonymous":
        return 401
    if not store_visible and role != "staff":
        return 404
    return success if RANK[role] >= RANK[needed] else 403


def call(client, method, path, body):
    return getattr(client, method)(f"/api/v1/{path}", body, format="json")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("where", ["own", "other"])
@pytest.mark.parametrize(
    "name, method, path, body, needed, success",
    STORE_ENDPOINTS,
    ids=[e[0] for e in STORE_ENDPOINTS],
)
def test_store_scoped_endpoints(world, role, where, name, method, path, body, needed, success):
    store = world[where]
    level = StockLevel.objects.get(store=store, product=world["product"])
    client = api_client(world["users"][role])
    hold = world["holds"][store.code].pk

    response = call(client, method, path.format(store=store.code, hold=hold), body)

    expected = expected_status(role, needed, success, store_visible=where == "own")
    if expected >= 400:
        assert_error(response, expected)
        level.refresh_from_db()
        assert (level.on_hand, level.reserved, level.version) == (12, 2, 2)
    else:
        assert response.status_code == expected, response.content


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "name, method, path, body, needed, success",
    GLOBAL_ENDPOINTS,
    ids=[e[0] for e in GLOBAL_ENDPOINTS],
)
def test_global_endpoints(world, role, name, method, path, body, needed, success):
    client = api_client(world["users"][role])

    response = call(client, method, path, body)

    expected = expected_status(role, needed, success)
    if expected >= 400:
        assert_error(response, expected)
    else:
        assert response.status_code == expected, response.content


@pytest.mark.parametrize("role", ["viewer", "clerk", "manager"])
def test_a_store_that_does_not_exist_answers_like_one_the_user_cannot_see(world, role):
    client = api_client(world["users"][role])

    missing = client.get("/api/v1/stores/nowhere-01/stock/TEE/")
    hidden = client.get("/api/v1/stores/other-01/stock/TEE/")

    assert missing.status_code == hidden.status_code == 404
    assert missing.json() == hidden.json()


def test_a_bad_token_is_401(world):
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = client.get("/api/v1/stores/")

    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == "Token"


def test_the_store_list_shows_only_visible_stores(world):
    def codes(user):
        return [s["code"] for s in api_client(user).get("/api/v1/stores/").json()["results"]]

    assert codes(world["users"]["viewer"]) == ["dest-01", "own-01"]
    assert codes(world["users"]["staff"]) == ["dest-01", "other-01", "own-01"]


def test_availability_counts_only_visible_stores(world):
    response = api_client(world["users"]["viewer"]).get("/api/v1/products/TEE/availability/")

    assert response.json() == {
        "sku": "TEE",
        "total_available": 10,
        "stores": [{"store": "own-01", "on_hand": 12, "reserved": 2, "available": 10}],
    }
