import pytest

from stores.models import Membership, Role, Store
from tests.api import api_client, assert_error
from tests.factories import MembershipFactory, StaffFactory, StoreFactory, UserFactory


@pytest.fixture
def staff(db):
    return api_client(StaffFactory(username="staffer"))


def test_staff_create_a_store(staff):
    response = staff.post("/api/v1/stores/", {"code": "paris-01", "name": "Paris"}, format="json")

    assert response.status_code == 201
    assert response.json() | {"created_at": None} == {
        "code": "paris-01",
        "name": "Paris",
        "is_active": True,
        "created_at": None,
    }
    assert Store.objects.get().code == "paris-01"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"code": "Berlin 01", "name": "x"}, "code"),
        ({"code": "berlin-01", "name": "duplicate"}, "code"),
        ({"code": "x" * 51, "name": "x"}, "code"),
        ({"code": "rome-01"}, "name"),
        ({"code": None, "name": "x"}, "code"),
    ],
)
def test_a_bad_store_is_refused(staff, berlin, body, field):
    response = staff.post("/api/v1/stores/", body, format="json")

    assert list(assert_error(response, 400)["errors"]) == [field]
    assert list(Store.objects.values_list("code", flat=True)) == ["berlin-01"]


def test_staff_rename_and_deactivate_a_store_but_never_change_its_code(staff, berlin):
    response = staff.patch(
        "/api/v1/stores/berlin-01/",
        {"name": "Berlin Mitte", "is_active": False, "code": "mitte-01"},
        format="json",
    )

    assert response.status_code == 200
    berlin.refresh_from_db()
    assert (berlin.code, berlin.name, berlin.is_active) == ("berlin-01", "Berlin Mitte", False)


def test_a_manager_lists_grants_changes_and_revokes_members(berlin):
    manager = UserFactory(username="manager")
    MembershipFactory(user=manager, store=berlin, role=Role.MANAGER)
    UserFactory(username="newcomer")
    client = api_client(manager)

    granted = client.post(
        "/api/v1/stores/berlin-01/members/",
        {"username": "newcomer", "role": "clerk"},
        format="json",
    )
    promoted = client.post(
        "/api/v1/stores/berlin-01/members/",
        {"username": "newcomer", "role": "manager"},
        format="json",
    )
    listed = client.get("/api/v1/stores/berlin-01/members/")
    revoked = client.delete("/api/v1/stores/berlin-01/members/newcomer/")
    again = client.delete("/api/v1/stores/berlin-01/members/newcomer/")

    assert (granted.status_code, granted.json()["role"]) == (201, "clerk")
    assert (promoted.status_code, promoted.json()["role"]) == (200, "manager")
    assert [(m["username"], m["role"]) for m in listed.json()["results"]] == [
        ("manager", "manager"),
        ("newcomer", "manager"),
    ]
    assert revoked.status_code == 204
    assert_error(again, 404)
    assert list(Membership.objects.values_list("user__username", flat=True)) == ["manager"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"username": "ghost", "role": "clerk"}, "username"),
        ({"username": "inactive", "role": "clerk"}, "username"),
        ({"username": "newcomer", "role": "owner"}, "role"),
        ({"username": "newcomer"}, "role"),
    ],
)
def test_a_bad_grant_is_refused(staff, berlin, body, field):
    UserFactory(username="newcomer")
    UserFactory(username="inactive", is_active=False)

    response = staff.post("/api/v1/stores/berlin-01/members/", body, format="json")

    assert list(assert_error(response, 400)["errors"]) == [field]
    assert not Membership.objects.exists()


def test_the_store_list_is_paginated_and_counts_its_queries(staff, django_assert_num_queries):
    for number in range(3):
        StoreFactory(code=f"store-{number:02d}")

    # token user, its own and its groups' permissions (its role in every store), count, page
    with django_assert_num_queries(5):
        response = staff.get("/api/v1/stores/?page_size=2")

    body = response.json()
    assert (body["count"], len(body["results"])) == (3, 2)
    assert body["next"].endswith("page=2&page_size=2")


# --- Staff need the model permission for each change ---------------------------------

STORE_VIEW = "stock.view_stocklevel"  # staff see the stores through the stock permissions


def stores_and_members() -> tuple:
    return (
        list(Store.objects.order_by("pk").values_list("code", "name", "is_active")),
        set(Membership.objects.values_list("user__username", "store__code", "role")),
    )


@pytest.mark.parametrize(
    "permissions, create, rename",
    [
        ([], 403, 404),  # sees no store
        ([STORE_VIEW], 403, 403),
        ([STORE_VIEW, "stores.view_store"], 403, 403),
        ([STORE_VIEW, "stores.add_store"], 201, 403),
        ([STORE_VIEW, "stores.change_store"], 403, 200),
    ],
)
def test_staff_create_and_change_stores_only_with_those_permissions(
    berlin, permissions, create, rename
):
    client = api_client(StaffFactory(username="limited", permissions=permissions))
    before = stores_and_members()

    created = client.post("/api/v1/stores/", {"code": "rome-01", "name": "Rome"}, format="json")
    renamed = client.patch("/api/v1/stores/berlin-01/", {"name": "Mitte"}, format="json")

    assert (created.status_code, renamed.status_code) == (create, rename)
    for response in (created, renamed):
        if response.status_code >= 400:
            assert_error(response, response.status_code)
    codes = {"rome-01"} if create == 201 else set()
    assert set(Store.objects.values_list("code", flat=True)) == {"berlin-01"} | codes
    assert Store.objects.get(code="berlin-01").name == ("Mitte" if rename == 200 else "Berlin")
    if (create, rename) == (403, 403):
        assert stores_and_members() == before


@pytest.fixture
def berlin_members(berlin):
    MembershipFactory(user=UserFactory(username="member"), store=berlin, role=Role.CLERK)
    UserFactory(username="newcomer")


@pytest.mark.parametrize(
    "permission, allowed",
    [
        (None, set()),
        ("stores.view_membership", {"list"}),
        ("stores.add_membership", {"grant"}),
        ("stores.change_membership", {"change"}),
        ("stores.delete_membership", {"revoke"}),
    ],
)
def test_staff_manage_members_only_with_the_membership_permissions(
    berlin_members, permission, allowed
):
    """Staff who manage every store's stock (stock.change_stocklevel) still need the
    membership permission for each thing they do to the members."""
    permissions = [STORE_VIEW, "stock.change_stocklevel", *([permission] if permission else [])]
    client = api_client(StaffFactory(username="limited", permissions=permissions))
    url = "/api/v1/stores/berlin-01/members/"
    members = set(Membership.objects.values_list("user__username", "role"))

    answers = {
        "list": client.get(url),
        "grant": client.post(url, {"username": "newcomer", "role": "viewer"}, format="json"),
        "change": client.post(url, {"username": "member", "role": "manager"}, format="json"),
        "revoke": client.delete(f"{url}member/"),
    }

    success = {"list": 200, "grant": 201, "change": 200, "revoke": 204}
    assert {name: response.status_code for name, response in answers.items()} == {
        name: success[name] if name in allowed else 403 for name in answers
    }
    for name in set(answers) - allowed:
        assert_error(answers[name], 403, "permission_denied")
    expected = {
        None: members,
        "stores.view_membership": members,
        "stores.add_membership": members | {("newcomer", "viewer")},
        "stores.change_membership": {("member", "manager")},
        "stores.delete_membership": set(),
    }[permission]
    assert set(Membership.objects.values_list("user__username", "role")) == expected


def test_staff_administering_stores_reach_every_store_but_not_its_stock(berlin):
    """Store and membership permissions alone, no stock permission."""
    administrator = StaffFactory(
        permissions=[
            "stores.view_store",
            "stores.change_store",
            "stores.view_membership",
            "stores.add_membership",
        ]
    )
    UserFactory(username="newcomer")
    client = api_client(administrator)

    listed = client.get("/api/v1/stores/")
    read = client.get("/api/v1/stores/berlin-01/")
    renamed = client.patch("/api/v1/stores/berlin-01/", {"name": "Mitte"}, format="json")
    members = client.get("/api/v1/stores/berlin-01/members/")
    granted = client.post(
        "/api/v1/stores/berlin-01/members/",
        {"username": "newcomer", "role": "clerk"},
        format="json",
    )
    stock = client.get("/api/v1/stores/berlin-01/stock/")

    assert [store["code"] for store in listed.json()["results"]] == ["berlin-01"]
    assert (read.status_code, renamed.status_code, members.status_code) == (200, 200, 200)
    assert granted.status_code == 201
    assert_error(stock, 404)
    assert_error(client.get("/api/v1/stores/nowhere-01/"), 404)
