"""Staff in the stock admin and on the low-stock page: their powers follow their model
permissions, as in the API (``stores.access``). ``is_staff`` alone lets a user log in
and nothing more; the view permissions make a viewer of every store; a superuser
manages every store.
"""

import pytest

from stock.models import Movement
from stock.services import StockLine, reservation_create, stock_receive
from stock.tests.helpers import level_of
from stores.models import Role
from tests.factories import MembershipFactory

from .helpers import browser, change_url, operation_url, stock_state

STAFF = ["staff_without_permissions", "staff_with_view_permissions", "staff"]
OPERATIONS = ["receive", "adjust", "set-count", "transfer"]
VALID_INPUT = {
    "receive": {"quantity": "5"},
    "adjust": {"delta": "-1", "reason": "damaged"},
    "set-count": {"on_hand": "3", "expected_version": "1"},
    "transfer": {"to_store": "hamburg-01", "quantity": "1"},
}
STORE_ROWS = ["/admin/stock/stocklevel/", "/admin/stock/movement/", "/admin/stock/reservation/"]


# (GET, POST) of the level's page with a new reorder point, per kind of staff user.
LEVEL_PAGE = {
    "staff_without_permissions": (403, 403),
    "staff_with_view_permissions": (200, 403),
    "staff": (200, 302),
}


@pytest.mark.parametrize("who", STAFF)
def test_the_level_page_follows_the_staff_permissions(request, level, hamburg, who):
    client = browser(request.getfixturevalue(who))
    before = stock_state()

    shown = client.get(change_url(level))
    posted = client.post(change_url(level), {"reorder_point": "7", "_save": "Save"})

    assert (shown.status_code, posted.status_code) == LEVEL_PAGE[who]
    after = level_of(level.store, level.product)
    if who == "staff":
        assert [title for title, _ in shown.context["stock_operations"]] == [
            "Receive",
            "Adjust",
            "Set count",
            "Transfer",
        ]
        assert 'name="reorder_point"' in shown.text
        assert after.reorder_point == 7
        return
    if shown.status_code == 200:  # view permissions: read-only, no operations
        assert shown.context["stock_operations"] == []
        assert 'name="reorder_point"' not in shown.text
        assert 'name="_save"' not in shown.text
        assert "/low-stock/" not in shown.text
        for operation in OPERATIONS:
            assert operation_url(level, operation) not in shown.text
    assert stock_state() == before


@pytest.mark.parametrize("who", ["staff_without_permissions", "staff_with_view_permissions"])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_staff_without_the_change_permission_may_not_open_or_post_an_operation(
    request, level, hamburg, who, operation
):
    client = browser(request.getfixturevalue(who))
    before = stock_state()

    shown = client.get(operation_url(level, operation))
    posted = client.post(operation_url(level, operation), VALID_INPUT[operation])

    assert (shown.status_code, posted.status_code) == (403, 403)
    assert stock_state() == before


# What each operation leaves: (on_hand, version) of the level in berlin-01.
AFTER_OPERATION = {"receive": (15, 2), "adjust": (9, 2), "set-count": (3, 2), "transfer": (9, 2)}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_superuser_opens_and_posts_every_operation(staff, level, hamburg, operation):
    client = browser(staff)

    shown = client.get(operation_url(level, operation))
    posted = client.post(operation_url(level, operation), VALID_INPUT[operation])

    assert (shown.status_code, posted.status_code) == (200, 302)
    after = level_of(level.store, level.product)
    assert (after.on_hand, after.version) == AFTER_OPERATION[operation]
    assert Movement.objects.latest("id").actor == staff


@pytest.mark.parametrize(
    "who, status",
    [("staff_without_permissions", 404), ("staff_with_view_permissions", 403), ("staff", 200)],
)
def test_the_low_stock_page_follows_the_staff_permissions(request, level, who, status):
    response = browser(request.getfixturevalue(who)).get("/stores/berlin-01/low-stock/")

    assert response.status_code == status


@pytest.mark.parametrize("url", STORE_ROWS)
@pytest.mark.parametrize(
    "who, status",
    [("staff_without_permissions", 403), ("staff_with_view_permissions", 200), ("staff", 200)],
)
def test_the_store_lists_follow_the_staff_permissions(
    request, level, hamburg, tee, url, who, status
):
    """Staff with a role in every store see every store's rows; staff without one see
    none of these lists."""
    stock_receive(store=hamburg, product=tee, quantity=2)
    for store in (level.store, hamburg):
        reservation_create(store=store, lines=[StockLine(tee, 1)])

    response = browser(request.getfixturevalue(who)).get(url)

    assert response.status_code == status
    if status == 200:
        stores = {row.store.code for row in response.context["cl"].result_list}
        assert stores == {"berlin-01", "hamburg-01"}


def test_staff_without_permissions_log_in_and_see_no_store_model(staff_without_permissions):
    response = browser(staff_without_permissions).get("/admin/")

    assert response.status_code == 200
    assert response.context["app_list"] == []


def test_staff_with_view_permissions_see_every_model_but_add_nothing(
    staff_with_view_permissions,
):
    response = browser(staff_with_view_permissions).get("/admin/")

    models = {
        model["name"]: (model["perms"]["view"], model["perms"]["add"])
        for app in response.context["app_list"]
        for model in app["models"]
    }
    assert models == {
        name: (True, False)
        for name in (
            "Stock levels",
            "Movements",
            "Reservations",
            "Audit events",
            "Stock events",
            "Products",
            "Stores",
        )
    }


def test_staff_without_permissions_who_manage_a_store_operate_there_only(
    staff_without_permissions, level, hamburg, tee
):
    """Membership and staff permissions add up: the higher role counts in each store."""
    stock_receive(store=hamburg, product=tee, quantity=4)
    hamburg_level = level_of(hamburg, tee)
    MembershipFactory(user=staff_without_permissions, store=level.store, role=Role.MANAGER)
    client = browser(staff_without_permissions)

    own = client.post(operation_url(level, "receive"), {"quantity": "5"})
    other = client.post(operation_url(hamburg_level, "receive"), {"quantity": "5"})

    assert (own.status_code, other.status_code) == (302, 404)
    assert level_of(level.store, tee).on_hand == 15
    assert level_of(hamburg, tee).on_hand == 4
