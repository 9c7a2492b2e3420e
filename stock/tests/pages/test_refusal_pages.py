"""A clerk or viewer who opens a manager's page gets the admin's page saying why, with
status 403, not a bare "403 Forbidden"; and nothing changes."""

import pytest

from .helpers import ADMIN_HEADER, browser, refusal_of, stock_state

OPERATIONS = {
    "receive": "receive stock",
    "adjust": "adjust stock",
    "set-count": "record a count",
    "transfer": "transfer stock",
}
VALID_INPUT = {
    "receive": {"quantity": "5"},
    "adjust": {"delta": "-1", "reason": "damaged"},
    "set-count": {"on_hand": "3", "expected_version": "1"},
    "transfer": {"to_store": "hamburg-01", "quantity": "1"},
}


def assert_admin_refusal(response, sentence):
    assert response.status_code == 403
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert ADMIN_HEADER in response.text
    assert "<h1>You may not open this page</h1>" in response.text
    assert refusal_of(response) == sentence


@pytest.mark.parametrize("role", ["clerk", "viewer"])
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_an_operation_page_tells_a_clerk_or_viewer_it_is_for_managers(
    request, level, hamburg, role, operation
):
    client = browser(request.getfixturevalue(role))
    before = stock_state()
    url = f"/admin/stock/stocklevel/{level.pk}/{operation}/"

    shown = client.get(url)
    posted = client.post(url, VALID_INPUT[operation])

    sentence = (
        f"Only a manager of store berlin-01 may {OPERATIONS[operation]}; you are a {role} there."
    )
    assert_admin_refusal(shown, sentence)
    assert_admin_refusal(posted, sentence)
    assert stock_state() == before


def test_staff_with_the_view_permissions_are_told_they_are_viewers(
    staff_with_view_permissions, level
):
    response = browser(staff_with_view_permissions).get(
        f"/admin/stock/stocklevel/{level.pk}/receive/"
    )

    assert_admin_refusal(
        response, "Only a manager of store berlin-01 may receive stock; you are a viewer there."
    )


@pytest.mark.parametrize("role", ["clerk", "viewer"])
def test_a_reorder_point_posted_by_a_clerk_or_viewer_is_refused_saying_why(request, level, role):
    before = stock_state()

    response = browser(request.getfixturevalue(role)).post(
        f"/admin/stock/stocklevel/{level.pk}/change/", {"reorder_point": "7", "_save": "Save"}
    )

    assert_admin_refusal(
        response,
        f"Only a manager of store berlin-01 may change its reorder points; you are a {role} there.",
    )
    assert stock_state() == before


@pytest.mark.parametrize("role", ["clerk", "viewer"])
def test_the_low_stock_page_tells_a_clerk_or_viewer_it_is_for_managers(request, level, role):
    response = browser(request.getfixturevalue(role)).get("/stores/berlin-01/low-stock/")

    assert_admin_refusal(response, "This needs the manager role in store berlin-01.")


def test_a_staff_only_admin_page_refuses_a_member_in_the_admins_style(manager):
    response = browser(manager).get("/admin/catalog/product/")

    assert_admin_refusal(
        response, "Your account does not have the role or permission this page needs."
    )
