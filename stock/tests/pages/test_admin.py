"""The stock admin through a browser session: who gets in, which rows each role sees,
the reorder point and the four stock operations, the list filters and the query counts.

Store A is berlin-01, store B hamburg-01. The manager, clerk and viewer are members of
berlin-01 only; the hamburg manager of hamburg-01 only; staff see every store.
"""

import pytest
from django.db import connection
from django.test import Client

from audit.models import AuditEvent, AuditOutboxEntry
from audit.services import audit_relay_pending
from catalog.services import product_create
from stock.models import Movement, MovementKind, StockLevel
from stock.services import (
    StockLine,
    reservation_create,
    stock_receive,
)
from stock.tests.helpers import level_of
from stores.models import Role
from stores.services import store_update
from tests.factories import (
    TEST_PASSWORD,
    MembershipFactory,
    ProductFactory,
    StoreFactory,
)

from .helpers import browser, change_url, messages_of, operation_url, rows, stock_state

MEMBER_MODELS = {"Stock levels", "Movements", "Reservations", "Audit events", "Stock events"}
# A store's webhooks are its managers' (events.webhooks).
MANAGER_MODELS = MEMBER_MODELS | {"Webhook subscriptions", "Webhook deliveries"}
MEMBERS = ["manager", "clerk", "viewer"]
READ_ONLY_MEMBERS = ["clerk", "viewer"]
LOCKED_OUT = ["outsider", "inactive_manager"]
OPERATIONS = ["receive", "adjust", "set-count", "transfer"]


# --- Fixtures -----------------------------------------------------------------------


@pytest.fixture
def hamburg_level(hamburg, tee):
    stock_receive(store=hamburg, product=tee, quantity=4)
    return level_of(hamburg, tee)


@pytest.fixture
def everywhere(staff, berlin, hamburg):
    """A product created through the catalog (an audit event of no store), stocked and
    reserved in both stores, with the audit outbox relayed."""
    cap = product_create(sku="CAP", name="Cap", price="5.00", actor=staff)
    stock_receive(store=berlin, product=cap, quantity=10, actor=staff)
    stock_receive(store=hamburg, product=cap, quantity=4, actor=staff)
    reservation_create(
        store=berlin, lines=[StockLine(cap, 2)], reference="cart-berlin", actor=staff
    )
    reservation_create(
        store=hamburg, lines=[StockLine(cap, 1)], reference="cart-hamburg", actor=staff
    )
    audit_relay_pending()
    return cap


# --- Helpers ------------------------------------------------------------------------


def as_role(request, role) -> Client:
    return browser(request.getfixturevalue(role))


def filter_choices(response, title) -> list[str]:
    changelist = response.context["cl"]
    [spec] = [spec for spec in changelist.filter_specs if spec.title == title]
    return [choice["display"] for choice in spec.choices(changelist)]


def newest_movement() -> Movement:
    return Movement.objects.select_related("store", "actor").order_by("-id").first()


# --- Logging in ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", *MEMBERS])
def test_staff_and_members_log_in_with_the_login_form(request, role):
    user = request.getfixturevalue(role)
    client = Client()

    response = client.post(
        "/admin/login/",
        {"username": user.username, "password": TEST_PASSWORD, "next": "/admin/"},
    )

    assert (response.status_code, response["Location"]) == (302, "/admin/")
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.parametrize("role", LOCKED_OUT)
def test_the_login_form_refuses_a_user_of_no_store_and_an_inactive_manager(request, role):
    user = request.getfixturevalue(role)
    client = Client()

    response = client.post(
        "/admin/login/",
        {"username": user.username, "password": TEST_PASSWORD, "next": "/admin/"},
    )

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Please enter the correct username and password of a store member or staff "
        "account. Note that both fields may be case-sensitive."
    ]
    assert "_auth_user_id" not in client.session


# --- What each role sees ------------------------------------------------------------


@pytest.mark.parametrize("role", MEMBERS)
def test_members_see_only_the_stock_and_audit_models_on_the_index(request, role):
    response = as_role(request, role).get("/admin/")

    assert response.status_code == 200
    listed = {model["name"] for app in response.context["app_list"] for model in app["models"]}
    assert listed == (MANAGER_MODELS if role == "manager" else MEMBER_MODELS)


def test_staff_see_the_catalog_stores_and_users_as_well_on_the_index(staff):
    response = browser(staff).get("/admin/")

    assert response.status_code == 200
    listed = {model["name"] for app in response.context["app_list"] for model in app["models"]}
    assert listed >= MEMBER_MODELS | {"Products", "Stores", "Users"}


ADMIN_PAGES = [
    "/admin/",
    "/admin/stock/stocklevel/",
    "/admin/stock/movement/",
    "/admin/stock/reservation/",
    "/admin/audit/auditevent/",
    "/admin/catalog/product/",
    "/admin/stores/store/",
    "/admin/accounts/user/",
]


@pytest.mark.parametrize("role", LOCKED_OUT)
@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_users_of_no_store_and_inactive_managers_are_sent_to_the_login_page(
    request, everywhere, role, url
):
    response = as_role(request, role).get(url)

    assert (response.status_code, response["Location"]) == (302, f"/admin/login/?next={url}")


def changelist_rows(url, response, berlin, hamburg) -> list[tuple]:
    """The changelist's rows, described by store code and a distinguishing field."""
    codes = {berlin.pk: berlin.code, hamburg.pk: hamburg.code, None: None}
    if url == "/admin/stock/stocklevel/":
        return [(level.store.code, level.product.sku) for level in rows(response)]
    if url == "/admin/stock/movement/":
        return [(movement.store.code, movement.kind) for movement in rows(response)]
    if url == "/admin/stock/reservation/":
        return [(reservation.store.code, reservation.reference) for reservation in rows(response)]
    return [(codes[event.store_id], event.action) for event in rows(response)]


BERLIN_ROWS = {
    "/admin/stock/stocklevel/": [("berlin-01", "CAP")],
    "/admin/stock/movement/": [("berlin-01", "reserve"), ("berlin-01", "receive")],
    "/admin/stock/reservation/": [("berlin-01", "cart-berlin")],
    "/admin/audit/auditevent/": [
        ("berlin-01", "reservation.create"),
        ("berlin-01", "stock.reserve"),
        ("berlin-01", "stock.receive"),
    ],
}
EVERY_ROW = {
    "/admin/stock/stocklevel/": [("berlin-01", "CAP"), ("hamburg-01", "CAP")],
    "/admin/stock/movement/": [
        ("hamburg-01", "reserve"),
        ("berlin-01", "reserve"),
        ("hamburg-01", "receive"),
        ("berlin-01", "receive"),
    ],
    "/admin/stock/reservation/": [("hamburg-01", "cart-hamburg"), ("berlin-01", "cart-berlin")],
    "/admin/audit/auditevent/": [
        ("hamburg-01", "reservation.create"),
        ("hamburg-01", "stock.reserve"),
        ("berlin-01", "reservation.create"),
        ("berlin-01", "stock.reserve"),
        ("hamburg-01", "stock.receive"),
        ("berlin-01", "stock.receive"),
        (None, "product.create"),
    ],
}


@pytest.mark.parametrize("role", MEMBERS)
@pytest.mark.parametrize("url", list(BERLIN_ROWS))
def test_members_see_the_rows_of_their_store_only(request, everywhere, berlin, hamburg, role, url):
    response = as_role(request, role).get(url)

    assert response.status_code == 200
    assert changelist_rows(url, response, berlin, hamburg) == BERLIN_ROWS[url]


@pytest.mark.parametrize("url", list(EVERY_ROW))
def test_staff_see_the_rows_of_every_store(everywhere, staff, berlin, hamburg, url):
    response = browser(staff).get(url)

    assert response.status_code == 200
    assert changelist_rows(url, response, berlin, hamburg) == EVERY_ROW[url]


@pytest.mark.parametrize("url", list(BERLIN_ROWS))
def test_a_member_of_the_other_store_sees_none_of_store_as_rows(
    everywhere, hamburg_manager, berlin, hamburg, url
):
    response = browser(hamburg_manager).get(url)

    assert response.status_code == 200
    assert {row[0] for row in changelist_rows(url, response, berlin, hamburg)} == {"hamburg-01"}


STAFF_ONLY_PAGES = ["/admin/catalog/product/", "/admin/stores/store/", "/admin/accounts/user/"]


@pytest.mark.parametrize("url", STAFF_ONLY_PAGES)
def test_staff_open_the_catalog_stores_and_users(everywhere, staff, url):
    assert browser(staff).get(url).status_code == 200


@pytest.mark.parametrize("role", MEMBERS)
@pytest.mark.parametrize("url", STAFF_ONLY_PAGES)
def test_members_may_not_open_the_catalog_stores_or_users(request, everywhere, role, url):
    assert as_role(request, role).get(url).status_code == 403


# --- The stock level's page ---------------------------------------------------------


def operation_links(level) -> list[str]:
    return [f'<a href="{operation_url(level, operation)}">' for operation in OPERATIONS]


@pytest.mark.parametrize("role", ["manager", "staff"])
def test_a_manager_gets_an_editable_reorder_point_and_the_four_operations(request, level, role):
    response = as_role(request, role).get(change_url(level))

    assert response.status_code == 200
    assert 'name="reorder_point"' in response.text
    assert [title for title, _ in response.context["stock_operations"]] == [
        "Receive",
        "Adjust",
        "Set count",
        "Transfer",
    ]
    for link in operation_links(level):
        assert link in response.text


@pytest.mark.parametrize("role", READ_ONLY_MEMBERS)
def test_clerks_and_viewers_get_a_read_only_page_without_operations(request, level, role):
    response = as_role(request, role).get(change_url(level))

    assert response.status_code == 200
    assert 'name="reorder_point"' not in response.text
    assert 'name="_save"' not in response.text
    assert response.context["stock_operations"] == []
    for link in operation_links(level):
        assert link not in response.text


@pytest.mark.parametrize("role", READ_ONLY_MEMBERS)
def test_clerks_and_viewers_are_not_offered_the_managers_low_stock_page(request, level, role):
    """The low-stock page answers 403 to clerks and viewers, so their level page should
    not link to it."""
    response = as_role(request, role).get(change_url(level))

    assert response.status_code == 200
    assert "/stores/berlin-01/low-stock/" not in response.text


def test_a_manager_is_offered_the_low_stock_page_of_the_levels_store(manager, level):
    response = browser(manager).get(change_url(level))

    assert '<a href="/stores/berlin-01/low-stock/">Low stock in this store</a>' in response.text


@pytest.mark.parametrize("role", ["staff", *MEMBERS])
def test_on_hand_and_reserved_are_never_inputs_of_the_level_page(request, level, role):
    response = as_role(request, role).get(change_url(level))

    assert response.status_code == 200
    assert 'name="on_hand"' not in response.text
    assert 'name="reserved"' not in response.text
    assert 'name="version"' not in response.text


@pytest.mark.parametrize("role", MEMBERS)
def test_the_level_page_names_its_store_and_product_without_links_to_staff_pages(
    request, level, role
):
    response = as_role(request, role).get(change_url(level))

    assert response.status_code == 200
    assert "berlin-01 (Berlin)" in response.text
    assert "TEE-RED-M (Red T-shirt)" in response.text
    assert "/admin/stores/" not in response.text
    assert "/admin/catalog/" not in response.text


@pytest.mark.parametrize("role", MEMBERS)
def test_a_level_of_another_store_is_not_found_for_a_member(request, hamburg_level, role):
    response = as_role(request, role).get(change_url(hamburg_level), follow=True)

    assert response.redirect_chain == [("/admin/", 302)]
    assert messages_of(response) == [
        (
            "warning",
            f"stock level with ID “{hamburg_level.pk}” doesn’t exist. Perhaps it was deleted?",
        )
    ]


# --- The reorder point --------------------------------------------------------------


def reorder_point_form(value) -> dict:
    return {"reorder_point": str(value), "_save": "Save"}


def test_a_manager_sets_the_reorder_point_through_the_service(manager, berlin, level):
    movements = Movement.objects.count()
    AuditOutboxEntry.objects.all().delete()

    response = browser(manager).post(change_url(level), reorder_point_form(7))

    assert (response.status_code, response["Location"]) == (302, "/admin/stock/stocklevel/")
    after = level_of(level.store, level.product)
    assert (after.on_hand, after.reserved, after.reorder_point, after.version) == (10, 0, 7, 1)
    assert Movement.objects.count() == movements
    assert list(
        AuditOutboxEntry.objects.filter(action="stock.reorder_point").values_list(
            "actor_username", "store_id", "object_id", "object_repr", "before", "after"
        )
    ) == [
        (
            "manager",
            berlin.pk,
            str(level.pk),
            "TEE-RED-M @ berlin-01",
            {"reorder_point": 0},
            {"reorder_point": 7},
        )
    ]
    audit_relay_pending()
    assert list(
        AuditEvent.objects.filter(action="stock.reorder_point").values_list(
            "actor_username", "store_id", "after"
        )
    ) == [("manager", berlin.pk, {"reorder_point": 7})]


def test_on_hand_reserved_and_version_posted_with_the_level_form_are_ignored(manager, level):
    movements = Movement.objects.count()

    response = browser(manager).post(
        change_url(level),
        {**reorder_point_form(7), "on_hand": "999", "reserved": "5", "version": "9"},
    )

    assert response.status_code == 302
    after = level_of(level.store, level.product)
    assert (after.on_hand, after.reserved, after.reorder_point, after.version) == (10, 0, 7, 1)
    assert Movement.objects.count() == movements


@pytest.mark.parametrize("value", [-1, 1_000_001])
def test_a_reorder_point_out_of_range_is_a_form_error_and_changes_nothing(manager, level, value):
    before = stock_state()
    client = Client(raise_request_exception=False)
    client.force_login(manager)

    response = client.post(change_url(level), reorder_point_form(value))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert stock_state() == before


@pytest.mark.parametrize("role", READ_ONLY_MEMBERS)
def test_clerks_and_viewers_may_not_post_a_reorder_point(request, level, role):
    before = stock_state()

    response = as_role(request, role).post(change_url(level), reorder_point_form(7))

    assert response.status_code == 403
    assert stock_state() == before


# --- Operations ---------------------------------------------------------------------


def test_a_manager_receives_stock(manager, level):
    response = browser(manager).post(
        operation_url(level, "receive"),
        {"quantity": "5", "reference": "PO-7", "note": "pallet 2"},
        follow=True,
    )

    assert response.redirect_chain == [(change_url(level), 302)]
    assert messages_of(response) == [("success", "Received 5 units; on hand now 15.")]
    after = level_of(level.store, level.product)
    assert (after.on_hand, after.reserved, after.version) == (15, 0, 2)
    movement = newest_movement()
    assert (
        movement.store.code,
        movement.kind,
        movement.delta_on_hand,
        movement.on_hand_after,
        movement.reference,
        movement.note,
        movement.actor,
    ) == ("berlin-01", MovementKind.RECEIVE, 5, 15, "PO-7", "pallet 2", manager)


@pytest.mark.parametrize(
    "delta, reason, on_hand, message",
    [
        (-3, "damaged", 7, "Adjusted by -3 (damaged); on hand now 7."),
        (4, "found", 14, "Adjusted by +4 (found); on hand now 14."),
    ],
)
def test_a_manager_adjusts_stock_with_a_reason(manager, level, delta, reason, on_hand, message):
    response = browser(manager).post(
        operation_url(level, "adjust"), {"delta": str(delta), "reason": reason}, follow=True
    )

    assert response.redirect_chain == [(change_url(level), 302)]
    assert messages_of(response) == [("success", message)]
    after = level_of(level.store, level.product)
    assert (after.on_hand, after.version) == (on_hand, 2)
    movement = newest_movement()
    assert (movement.kind, movement.delta_on_hand, movement.reason, movement.actor) == (
        MovementKind.ADJUST,
        delta,
        reason,
        manager,
    )


def test_the_count_form_carries_the_version_it_was_shown_at(manager, level):
    response = browser(manager).get(operation_url(level, "set-count"))

    assert response.status_code == 200
    assert (
        '<input type="hidden" name="expected_version" value="1" id="id_expected_version">'
        in response.text
    )


def test_a_manager_records_a_count(manager, level):
    response = browser(manager).post(
        operation_url(level, "set-count"),
        {"on_hand": "6", "expected_version": "1", "reason": "correction"},
        follow=True,
    )

    assert response.redirect_chain == [(change_url(level), 302)]
    assert messages_of(response) == [("success", "Count recorded; on hand now 6.")]
    after = level_of(level.store, level.product)
    assert (after.on_hand, after.version) == (6, 2)
    movement = newest_movement()
    assert (movement.kind, movement.delta_on_hand, movement.reason, movement.actor) == (
        MovementKind.SET,
        -4,
        "correction",
        manager,
    )


def test_a_count_from_a_stale_form_is_refused_with_409_and_changes_nothing(
    manager, level, berlin, tee
):
    stock_receive(store=berlin, product=tee, quantity=1)  # version 2 since the form was shown
    before = stock_state()

    response = browser(manager).post(
        operation_url(level, "set-count"), {"on_hand": "6", "expected_version": "1"}
    )

    assert response.status_code == 409
    assert messages_of(response) == [
        ("error", "The stock level is at version 2, not 1; read it again.")
    ]
    assert stock_state() == before


def test_the_transfer_form_offers_every_other_active_store(manager, level, hamburg, munich):
    StoreFactory(code="closed-01", is_active=False)

    response = browser(manager).get(operation_url(level, "transfer"))

    assert response.status_code == 200
    choices = response.context["form"].fields["to_store"].choices
    assert [label for _, label in choices] == ["---------", "hamburg-01", "munich-01"]
    assert 'value="closed-01"' not in response.text


def test_a_manager_transfers_stock_to_a_store_they_are_no_member_of(manager, level, munich, tee):
    response = browser(manager).post(
        operation_url(level, "transfer"),
        {"to_store": "munich-01", "quantity": "3", "note": "weekend"},
        follow=True,
    )

    assert response.redirect_chain == [(change_url(level), 302)]
    assert messages_of(response) == [("success", "Moved 3 units to munich-01.")]
    source, destination = level_of(level.store, tee), level_of(munich, tee)
    assert (source.on_hand, source.version) == (7, 2)
    assert (destination.on_hand, destination.version) == (3, 1)
    moved = list(Movement.objects.order_by("-id")[:2].select_related("store"))
    assert [(m.store.code, m.kind, m.delta_on_hand, m.actor) for m in moved] == [
        ("munich-01", MovementKind.TRANSFER_IN, 3, manager),
        ("berlin-01", MovementKind.TRANSFER_OUT, -3, manager),
    ]
    assert moved[0].reference == moved[1].reference != ""


def test_a_transfer_to_an_inactive_store_is_a_form_error(manager, level, hamburg):
    store_update(store=hamburg, is_active=False, actor=None)
    before = stock_state()

    response = browser(manager).post(
        operation_url(level, "transfer"), {"to_store": "hamburg-01", "quantity": "3"}
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "to_store": ["Select a valid choice. That choice is not one of the available choices."]
    }
    assert stock_state() == before
    assert not StockLevel.objects.filter(store=hamburg).exists()


def test_an_adjust_below_available_is_refused_with_409_and_changes_nothing(
    manager, level, berlin, tee
):
    reservation_create(store=berlin, lines=[StockLine(tee, 3)])  # 10 on hand, 7 available
    before = stock_state()

    response = browser(manager).post(
        operation_url(level, "adjust"), {"delta": "-8", "reason": "lost"}
    )

    assert response.status_code == 409
    message = "Not enough stock (TEE-RED-M: 8 requested, 7 available)."
    assert messages_of(response) == [("error", message)]
    assert f'<li class="error">{message}</li>' in response.text
    assert stock_state() == before


def test_a_transfer_of_more_than_available_is_refused_with_409_and_changes_nothing(
    manager, level, munich
):
    MembershipFactory(user=manager, store=munich, role=Role.MANAGER)
    before = stock_state()

    response = browser(manager).post(
        operation_url(level, "transfer"), {"to_store": "munich-01", "quantity": "11"}
    )

    assert response.status_code == 409
    assert messages_of(response) == [
        ("error", "Not enough stock (TEE-RED-M: 11 requested, 10 available).")
    ]
    assert stock_state() == before


@pytest.mark.parametrize(
    "operation, data, errors",
    [
        (
            "receive",
            {"quantity": "0"},
            {"quantity": ["Ensure this value is greater than or equal to 1."]},
        ),
        ("receive", {"quantity": "two"}, {"quantity": ["Enter a whole number."]}),
        ("receive", {"quantity": "1.5"}, {"quantity": ["Enter a whole number."]}),
        ("receive", {"reference": "PO-1"}, {"quantity": ["This field is required."]}),
        (
            "adjust",
            {"delta": "0", "reason": "damaged"},
            {"delta": ["An adjustment changes at least one unit."]},
        ),
        ("adjust", {"delta": "-2"}, {"reason": ["This field is required."]}),
        (
            "adjust",
            {"delta": "-2", "reason": "stolen"},
            {"reason": ["Select a valid choice. stolen is not one of the available choices."]},
        ),
        (
            "set-count",
            {"on_hand": "-1", "expected_version": "1"},
            {"on_hand": ["Ensure this value is greater than or equal to 0."]},
        ),
        (
            "transfer",
            {"to_store": "munich-01", "quantity": "0"},
            {"quantity": ["Ensure this value is greater than or equal to 1."]},
        ),
    ],
)
def test_invalid_operation_input_is_a_400_with_field_errors_and_changes_nothing(
    manager, level, munich, operation, data, errors
):
    MembershipFactory(user=manager, store=munich, role=Role.MANAGER)
    before = stock_state()

    response = browser(manager).post(operation_url(level, operation), data)

    assert response.status_code == 400
    assert response.context["form"].errors == errors
    assert 'class="errorlist' in response.text
    assert stock_state() == before


def test_a_count_without_its_expected_version_shows_why_it_was_refused(manager, level):
    """expected_version is a hidden input: its error is not next to any visible field, so
    the page must show it on its own (not only answer 400 with an unexplained form)."""
    before = stock_state()

    response = browser(manager).post(operation_url(level, "set-count"), {"on_hand": "5"})

    assert response.status_code == 400
    assert response.context["form"].errors == {"expected_version": ["This field is required."]}
    assert "This field is required." in response.text
    assert stock_state() == before


VALID_INPUT = {
    "receive": {"quantity": "5"},
    "adjust": {"delta": "-1", "reason": "damaged"},
    "set-count": {"on_hand": "3", "expected_version": "1"},
    "transfer": {"to_store": "hamburg-01", "quantity": "1"},
}


@pytest.mark.parametrize("role", READ_ONLY_MEMBERS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_clerks_and_viewers_may_not_open_or_post_an_operation(
    request, level, hamburg, role, operation
):
    client = as_role(request, role)
    before = stock_state()

    shown = client.get(operation_url(level, operation))
    posted = client.post(operation_url(level, operation), VALID_INPUT[operation])

    assert (shown.status_code, posted.status_code) == (403, 403)
    assert stock_state() == before


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_manager_of_another_store_gets_404_for_an_operation_on_the_level(
    hamburg_manager, level, operation
):
    client = browser(hamburg_manager)
    before = stock_state()

    shown = client.get(operation_url(level, operation))
    posted = client.post(operation_url(level, operation), VALID_INPUT[operation])

    assert (shown.status_code, posted.status_code) == (404, 404)
    assert stock_state() == before


@pytest.mark.parametrize("role", LOCKED_OUT)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_users_who_may_not_use_the_admin_are_sent_to_log_in_from_an_operation(
    request, level, role, operation
):
    before = stock_state()
    url = operation_url(level, operation)

    posted = as_role(request, role).post(url, VALID_INPUT[operation])

    assert (posted.status_code, posted["Location"]) == (302, f"/admin/login/?next={url}")
    assert stock_state() == before


# --- List filters and search --------------------------------------------------------


def test_members_are_offered_only_their_stores_in_the_store_filter(manager, level, hamburg_level):
    response = browser(manager).get("/admin/stock/stocklevel/")

    assert filter_choices(response, "store") == ["All", "berlin-01"]


def test_staff_are_offered_a_store_search_box_rather_than_a_link_per_store(
    staff, level, hamburg_level, munich
):
    """Staff see every store: thousands of links would be a page of their own
    (``test_admin_store_filter.py`` asks the search box's view)."""
    response = browser(staff).get("/admin/stock/stocklevel/")

    assert filter_choices(response, "store") == ["All"]
    assert 'data-ajax--url="/admin/stores/store/search/"' in response.text
    assert "stores/store_filter.js" in response.text


@pytest.mark.parametrize(
    "url",
    ["/admin/stock/movement/", "/admin/stock/reservation/", "/admin/audit/auditevent/"],
)
def test_every_store_scoped_list_offers_a_member_only_their_stores(manager, everywhere, url):
    response = browser(manager).get(url)

    assert filter_choices(response, "store") == ["All", "berlin-01"]


def test_staff_filter_the_levels_by_store(staff, level, hamburg_level):
    response = browser(staff).get("/admin/stock/stocklevel/?store=hamburg-01")

    assert response.status_code == 200
    assert rows(response) == [hamburg_level]


def test_a_member_filtering_by_a_store_they_do_not_see_gets_no_rows(manager, level, hamburg_level):
    response = browser(manager).get("/admin/stock/stocklevel/?store=hamburg-01")

    assert response.status_code == 200
    assert rows(response) == []


@pytest.mark.parametrize(
    "query, skus",
    [
        ("low_stock=yes", ["TEE-RED-M", "CAP-GREEN"]),
        ("low_stock=no", ["MUG-BLUE"]),
        ("", ["TEE-RED-M", "MUG-BLUE", "CAP-GREEN"]),  # products in the order they were added
    ],
)
def test_the_low_stock_filter_compares_available_with_the_reorder_point(
    manager, low_and_high, query, skus
):
    response = browser(manager).get(f"/admin/stock/stocklevel/?{query}")

    assert response.status_code == 200
    assert [level.product.sku for level in rows(response)] == skus


@pytest.mark.parametrize(
    "q, skus",
    [
        ("RED", ["TEE-RED-M"]),
        ("mug-b", ["MUG-BLUE"]),
        ("green cap", ["CAP-GREEN"]),
        ("T-shirt", ["TEE-RED-M"]),
        ("nothing-like-it", []),
    ],
)
def test_levels_are_found_by_part_of_the_sku_or_the_product_name(manager, low_and_high, q, skus):
    response = browser(manager).get("/admin/stock/stocklevel/", {"q": q})

    assert response.status_code == 200
    assert [level.product.sku for level in rows(response)] == skus


def test_a_search_finds_no_level_of_a_store_the_member_does_not_see(manager, level, hamburg, mug):
    stock_receive(store=hamburg, product=mug, quantity=3)

    response = browser(manager).get("/admin/stock/stocklevel/", {"q": "MUG"})

    assert rows(response) == []


# --- Query counts -------------------------------------------------------------------

# Observed for a member: session, user, their memberships (the admin site's permission
# check, the ids of their stores and the store filter's links at once), the count, the
# user's and the groups' permissions (the sidebar), the rows with their related rows
# joined; the audit log adds one query each for its "action" and "object type" filters.
# A superuser skips the memberships and the permissions, and the store filter is a search
# box asking for stores as one types. On PostgreSQL a member's (filtered) list is
# counted after the planner's estimate said counting is cheap: one more query
# (inventory_site/admin_lists.py). The same for 1 row and for 100.
CHANGELIST_QUERIES = {
    ("manager", "/admin/stock/stocklevel/"): 7,
    ("staff", "/admin/stock/stocklevel/"): 4,
    ("manager", "/admin/stock/movement/"): 7,
    ("staff", "/admin/stock/movement/"): 4,
    ("manager", "/admin/audit/auditevent/"): 9,
    ("staff", "/admin/audit/auditevent/"): 6,
}


def changelist_queries(role, url) -> int:
    estimate_first = connection.vendor == "postgresql" and role != "staff"
    return CHANGELIST_QUERIES[role, url] + estimate_first


@pytest.fixture
def berlin_rows(berlin, manager, clerk):
    """``count`` products received in berlin-01 by two different users (so an actor
    fetched per row would show), with their audit events relayed."""

    def create(count):
        for number in range(count):
            stock_receive(
                store=berlin,
                product=ProductFactory(sku=f"BULK-{number:03d}"),
                quantity=number + 1,
                actor=manager if number % 2 else clerk,
            )
        audit_relay_pending()

    return create


@pytest.mark.parametrize("count", [1, 100])
@pytest.mark.parametrize("role, url", list(CHANGELIST_QUERIES))
def test_a_changelist_takes_the_same_queries_for_1_and_100_rows(
    request, django_assert_num_queries, berlin_rows, role, url, count
):
    berlin_rows(count)
    client = as_role(request, role)
    client.get(url)  # warm up the process-wide caches (content types, ...)

    with django_assert_num_queries(changelist_queries(role, url)):
        response = client.get(url)

    assert response.status_code == 200
    assert len(rows(response)) == count
