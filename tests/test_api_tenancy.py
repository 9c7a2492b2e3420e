"""The whole permission matrix: every endpoint x role x own/other store, anonymous included.

- anonymous: 401 everywhere;
- a store the user is not a member of: 404, exactly as for a store that does not exist;
- a member whose role is too low: 403;
- staff hold, in every store, the role their stock permissions give (manager with
  ``stock.change_stocklevel``, viewer with ``stock.view_stocklevel``, none otherwise:
  then every store answers 404); the catalog, stores and memberships need the model
  permission itself (403 without it); ``is_staff`` alone grants nothing; a superuser
  holds every permission;
- a bulk job (``GET /jobs/{id}/``) belongs to its store: its creator, the store's
  managers and staff with ``stock.view_bulkjob`` see it; anyone else gets 404, members
  of the store with a lower role too;
- otherwise the endpoint's success status.
A refused write leaves stock, memberships, products and stores as they were.
"""

import pytest

from catalog.models import Product
from stock.models import BulkJob, StockLevel
from stock.services import StockLine, bulk_job_submit, reservation_create, stock_receive
from stores.models import Membership, Role, Store
from tests.api import api_client, assert_error
from tests.factories import (
    MembershipFactory,
    ProductFactory,
    StaffFactory,
    StoreFactory,
    UserFactory,
    inventory_permissions,
)

RANK = {"viewer": 0, "clerk": 1, "manager": 2}
ANYONE = "anyone"  # any authenticated user

# (name, method, path under /api/v1/, body, member role needed (None: no member role is
#  enough), the staff permission that is needed instead of a role (None: staff need the
#  role, which their stock permissions give), status on success)
STORE_ENDPOINTS = [
    ("store detail", "get", "stores/{store}/", None, "viewer", None, 200),
    (
        "store update",
        "patch",
        "stores/{store}/",
        {"name": "Renamed"},
        None,
        "stores.change_store",
        200,
    ),
    (
        "member list",
        "get",
        "stores/{store}/members/",
        None,
        "manager",
        "stores.view_membership",
        200,
    ),
    (
        "member grant",
        "post",
        "stores/{store}/members/",
        {"username": "newcomer", "role": "viewer"},
        "manager",
        "stores.add_membership",
        201,
    ),
    (
        "member role change",
        "post",
        "stores/{store}/members/",
        {"username": "leaver", "role": "clerk"},
        "manager",
        "stores.change_membership",
        200,
    ),
    (
        "member revoke",
        "delete",
        "stores/{store}/members/leaver/",
        None,
        "manager",
        "stores.delete_membership",
        204,
    ),
    ("stock list", "get", "stores/{store}/stock/", None, "viewer", None, 200),
    ("stock detail", "get", "stores/{store}/stock/TEE/", None, "viewer", None, 200),
    (
        "reorder point",
        "patch",
        "stores/{store}/stock/TEE/",
        {"reorder_point": 3},
        "manager",
        None,
        200,
    ),
    (
        "receive",
        "post",
        "stores/{store}/stock/TEE/receive/",
        {"quantity": 1},
        "manager",
        None,
        200,
    ),
    (
        "adjust",
        "post",
        "stores/{store}/stock/TEE/adjust/",
        {"delta": -1, "reason": "damaged"},
        "manager",
        None,
        200,
    ),
    ("set", "post", "stores/{store}/stock/TEE/set/", {"on_hand": 4}, "manager", None, 200),
    (
        "purchase",
        "post",
        "stores/{store}/stock/TEE/purchase/",
        {"quantity": 1},
        "clerk",
        None,
        200,
    ),
    (
        "transfer",
        "post",
        "stores/{store}/transfers/",
        {"to_store": "dest-01", "lines": [{"sku": "TEE", "quantity": 1}]},
        "manager",
        None,
        200,
    ),
    (
        "bulk job",
        "post",
        "stores/{store}/stock/bulk/",
        {"mode": "set", "items": [{"sku": "TEE", "on_hand": 4}]},
        "manager",
        None,
        202,
    ),
    ("movements", "get", "stores/{store}/movements/", None, "viewer", None, 200),
    ("reservation list", "get", "stores/{store}/reservations/", None, "viewer", None, 200),
    (
        "reserve",
        "post",
        "stores/{store}/reservations/",
        {"lines": [{"sku": "TEE", "quantity": 1}]},
        "clerk",
        None,
        201,
    ),
    (
        "reservation detail",
        "get",
        "stores/{store}/reservations/{hold}/",
        None,
        "viewer",
        None,
        200,
    ),
    ("commit", "post", "stores/{store}/reservations/{hold}/commit/", None, "clerk", None, 200),
    ("release", "post", "stores/{store}/reservations/{hold}/release/", None, "clerk", None, 200),
]

GLOBAL_ENDPOINTS = [
    ("store list", "get", "stores/", None, ANYONE, None, 200),
    (
        "store create",
        "post",
        "stores/",
        {"code": "new-01", "name": "New"},
        None,
        "stores.add_store",
        201,
    ),
    ("product list", "get", "products/", None, ANYONE, None, 200),
    (
        "product create",
        "post",
        "products/",
        {"sku": "NEW-1", "name": "New", "price": "1.00"},
        None,
        "catalog.add_product",
        201,
    ),
    ("product detail", "get", "products/TEE/", None, ANYONE, None, 200),
    (
        "product update",
        "patch",
        "products/TEE/",
        {"name": "Renamed"},
        None,
        "catalog.change_product",
        200,
    ),
    ("availability", "get", "products/TEE/availability/", None, ANYONE, None, 200),
    ("audit log", "get", "audit/", None, ANYONE, None, 200),
]

# The role each kind of staff user holds in every store, from its stock permissions.
STAFF_STORE_ROLE = {
    "staff_without_permissions": None,
    "staff_with_view_permissions": "viewer",
    "staff": "manager",  # every model permission of the inventory apps
    "superuser": "manager",
}
ROLES = ["anonymous", "viewer", "clerk", "manager", *STAFF_STORE_ROLE]


def staff_holds(user: str, permission: str) -> bool:
    if user == "staff_with_view_permissions":
        return permission.split(".")[1].startswith("view_")
    return user in ("staff", "superuser")


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
    users = {
        "anonymous": None,
        "staff_without_permissions": StaffFactory(username="staff-none", permissions=[]),
        "staff_with_view_permissions": StaffFactory(
            username="staff-view", permissions=inventory_permissions("view")
        ),
        "staff": StaffFactory(username="staffer"),
        "superuser": UserFactory(username="root", is_staff=True, is_superuser=True),
    }
    for role in ("viewer", "clerk", "manager"):
        users[role] = UserFactory(username=role)
        MembershipFactory(user=users[role], store=own, role=role)
        MembershipFactory(user=users[role], store=destination, role=Role.VIEWER)
    return {"own": own, "other": other, "product": product, "users": users, "holds": holds}


def expected_status(user, needed, permission, success, *, store_visible=None):
    """``store_visible``: None for an endpoint of no store, else whether ``user`` (when
    not staff) is a member of the store."""
    if user == "anonymous":
        return 401
    staff = user in STAFF_STORE_ROLE
    role = STAFF_STORE_ROLE[user] if staff else (user if store_visible is not False else None)
    if store_visible is not None and role is None:
        return 404
    if needed == ANYONE:
        return success
    by_role = needed is not None and role is not None and RANK[role] >= RANK[needed]
    if staff and permission is not None:
        by_role = False  # staff need the permission itself; their stock role does not count
    by_permission = staff and permission is not None and staff_holds(user, permission)
    return success if by_role or by_permission else 403


def call(client, method, path, body):
    return getattr(client, method)(f"/api/v1/{path}", body, format="json")


def state() -> dict:
    """Everything a refused request must leave as it was."""
    return {
        "levels": list(
            StockLevel.objects.order_by("pk").values_list(
                "pk", "on_hand", "reserved", "reorder_point", "version"
            )
        ),
        "memberships": set(Membership.objects.values_list("user__username", "store__code", "role")),
        "products": list(Product.objects.order_by("pk").values_list("sku", "name", "is_active")),
        "stores": list(Store.objects.order_by("pk").values_list("code", "name", "is_active")),
        "bulk jobs": set(BulkJob.objects.values_list("pk", flat=True)),
    }


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("where", ["own", "other"])
@pytest.mark.parametrize(
    "name, method, path, body, needed, permission, success",
    STORE_ENDPOINTS,
    ids=[e[0] for e in STORE_ENDPOINTS],
)
def test_store_scoped_endpoints(
    world, role, where, name, method, path, body, needed, permission, success
):
    store = world[where]
    client = api_client(world["users"][role])
    hold = world["holds"][store.code].pk
    before = state()

    response = call(client, method, path.format(store=store.code, hold=hold), body)

    expected = expected_status(role, needed, permission, success, store_visible=where == "own")
    if expected >= 400:
        assert_error(response, expected)
        assert state() == before
    else:
        assert response.status_code == expected, response.content


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "name, method, path, body, needed, permission, success",
    GLOBAL_ENDPOINTS,
    ids=[e[0] for e in GLOBAL_ENDPOINTS],
)
def test_global_endpoints(world, role, name, method, path, body, needed, permission, success):
    client = api_client(world["users"][role])
    before = state()

    response = call(client, method, path, body)

    expected = expected_status(role, needed, permission, success)
    if expected >= 400:
        assert_error(response, expected)
        assert state() == before
    else:
        assert response.status_code == expected, response.content


@pytest.fixture
def jobs(world):
    """A bulk job in each store: own-01's submitted by the clerk (when they managed
    it), other-01's by a manager of that store."""
    other_manager = UserFactory(username="other-manager")
    MembershipFactory(user=other_manager, store=world["other"], role=Role.MANAGER)
    items = [{"sku": "TEE", "on_hand": 4}]
    return {
        "own": bulk_job_submit(
            store=world["own"], mode="set", items=items, actor=world["users"]["clerk"]
        ),
        "other": bulk_job_submit(
            store=world["other"], mode="set", items=items, actor=other_manager
        ),
    }


def job_status(user: str, where: str) -> int:
    """A job is seen by its creator (the clerk, of own-01's job), the managers of its
    store and staff holding stock.view_bulkjob; everyone else gets 404."""
    if user == "anonymous":
        return 401
    if user in STAFF_STORE_ROLE:
        by_role = STAFF_STORE_ROLE[user] == "manager"
        return 200 if by_role or staff_holds(user, "stock.view_bulkjob") else 404
    return 200 if where == "own" and user in ("manager", "clerk") else 404


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("where", ["own", "other"])
def test_a_bulk_job_is_seen_by_its_creator_its_store_managers_and_staff(world, jobs, role, where):
    job = jobs[where]

    response = api_client(world["users"][role]).get(f"/api/v1/jobs/{job.pk}/")

    expected = job_status(role, where)
    if expected >= 400:
        assert_error(response, expected)
    else:
        assert response.status_code == expected, response.content
        assert (response.json()["id"], response.json()["store"]) == (str(job.pk), f"{where}-01")


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
    assert codes(world["users"]["staff_with_view_permissions"]) == [
        "dest-01",
        "other-01",
        "own-01",
    ]
    assert codes(world["users"]["superuser"]) == ["dest-01", "other-01", "own-01"]
    assert codes(world["users"]["staff_without_permissions"]) == []


def test_availability_counts_only_visible_stores(world):
    response = api_client(world["users"]["viewer"]).get("/api/v1/products/TEE/availability/")

    assert response.json() == {
        "sku": "TEE",
        "total_available": 10,
        "count": 1,
        "next": None,
        "previous": None,
        "stores": [{"store": "own-01", "on_hand": 12, "reserved": 2, "available": 10}],
    }


@pytest.mark.parametrize("role", ["viewer", "staff_without_permissions"])
def test_a_store_that_does_not_exist_answers_like_one_the_user_cannot_see_for_staff_too(
    world, role
):
    client = api_client(world["users"][role])

    missing = client.post(
        "/api/v1/stores/nowhere-01/stock/TEE/receive/", {"quantity": 1}, format="json"
    )
    hidden = client.post(
        "/api/v1/stores/other-01/stock/TEE/receive/", {"quantity": 1}, format="json"
    )

    assert missing.status_code == hidden.status_code == 404
    assert missing.json() == hidden.json()


def test_the_staff_role_comes_from_the_stock_permissions_and_manages_no_members(world):
    """``stock.change_stocklevel`` makes a staff user a manager of every store's stock,
    but managing members needs the membership permissions."""
    stock_manager = StaffFactory(
        username="stock-staff", permissions=["stock.view_stocklevel", "stock.change_stocklevel"]
    )
    client = api_client(stock_manager)
    before = state()["memberships"]

    received = client.post(
        "/api/v1/stores/other-01/stock/TEE/receive/", {"quantity": 1}, format="json"
    )
    listed = client.get("/api/v1/stores/other-01/members/")
    granted = client.post(
        "/api/v1/stores/other-01/members/",
        {"username": "newcomer", "role": "manager"},
        format="json",
    )
    renamed = client.patch("/api/v1/stores/other-01/", {"name": "Mine"}, format="json")

    assert (received.status_code, received.json()["on_hand"]) == (200, 13)
    assert_error(listed, 403, "permission_denied")
    assert_error(granted, 403, "permission_denied")
    assert_error(renamed, 403, "permission_denied")
    assert state()["memberships"] == before
    assert Store.objects.get(code="other-01").name != "Mine"


@pytest.mark.parametrize(
    "permissions, membership, receive_own, receive_other",
    [
        ([], Role.MANAGER, 200, 404),  # the membership alone
        (["stock.view_stocklevel"], Role.MANAGER, 200, 403),  # the membership is higher
        (["stock.view_stocklevel", "stock.change_stocklevel"], Role.VIEWER, 200, 200),
        (["stock.view_stocklevel"], Role.VIEWER, 403, 403),
    ],
)
def test_a_staff_member_holds_the_higher_of_membership_and_permissions(
    world, permissions, membership, receive_own, receive_other
):
    user = StaffFactory(username="staff-member", permissions=permissions)
    MembershipFactory(user=user, store=world["own"], role=membership)
    client = api_client(user)

    own = client.post("/api/v1/stores/own-01/stock/TEE/receive/", {"quantity": 1}, format="json")
    other = client.post(
        "/api/v1/stores/other-01/stock/TEE/receive/", {"quantity": 1}, format="json"
    )

    assert (own.status_code, other.status_code) == (receive_own, receive_other)
    levels = {
        level.store.code: level.on_hand
        for level in StockLevel.objects.select_related("store").filter(product=world["product"])
    }
    assert levels == {
        "own-01": 13 if receive_own == 200 else 12,
        "other-01": 13 if receive_other == 200 else 12,
    }


def test_a_store_manager_by_membership_manages_its_members_without_permissions(world):
    client = api_client(world["users"]["manager"])

    granted = client.post(
        "/api/v1/stores/own-01/members/", {"username": "newcomer", "role": "clerk"}, format="json"
    )
    revoked = client.delete("/api/v1/stores/own-01/members/leaver/")

    assert (granted.status_code, revoked.status_code) == (201, 204)
    assert set(
        Membership.objects.filter(store=world["own"]).values_list("user__username", "role")
    ) == {("viewer", "viewer"), ("clerk", "clerk"), ("manager", "manager"), ("newcomer", "clerk")}
