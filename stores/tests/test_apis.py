import pytest

from stores.models import Membership, Role, Store
from tests.api import api_client, assert_error
from tests.factories import MembershipFactory, StoreFactory, UserFactory


@pytest.fixture
def staff(db):
    return api_client(UserFactory(username="staffer", is_staff=True))


@pytest.fixture
def berlin(db):
    return StoreFactory(code="berlin-01", name="Berlin")


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

    with django_assert_num_queries(3):  # token user, count, page
        response = staff.get("/api/v1/stores/?page_size=2")

    body = response.json()
    assert (body["count"], len(body["results"])) == (3, 2)
    assert body["next"].endswith("page=2&page_size=2")
