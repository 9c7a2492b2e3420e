"""An audit log of two stores and of no store, and the people who read it."""

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from audit.models import AuditOutboxEntry
from audit.services import audit_record, audit_relay_pending
from stores.models import Role
from tests.factories import (
    MembershipFactory,
    StaffFactory,
    UserFactory,
    inventory_permissions,
    member,
)

STOCK_VIEW = "stock.view_stocklevel"
STOCK_CHANGE = "stock.change_stocklevel"


@pytest.fixture
def staff(db):
    """Staff holding every model permission of the inventory apps, none of the audit log."""
    return StaffFactory(username="staffer")


# (store, action) of each event, sequence 1 first; event n came from 203.0.113.n.
STORE_AUDIT_LOG = [
    ("berlin-01", "stock.sale"),
    ("berlin-01", "reservation.create"),
    ("berlin-01", "membership.grant"),
    ("berlin-01", "store.update"),
    ("hamburg-01", "stock.receive"),
    ("hamburg-01", "membership.revoke"),
    (None, "product.create"),
    (None, "auth.login_failed"),
]


@pytest.fixture
def store_audit_log(berlin, hamburg):
    """The events of STORE_AUDIT_LOG, relayed: stock and reservation events, membership
    and store changes in two stores, and events of no store."""
    stores = {"berlin-01": berlin.pk, "hamburg-01": hamburg.pk, None: None}
    for number, (store, action) in enumerate(STORE_AUDIT_LOG, start=1):
        AuditOutboxEntry.objects.create(
            occurred_at=datetime(2025, 1, 1, 10, number, tzinfo=UTC),
            actor_username="someone",
            ip=f"203.0.113.{number}",
            action=action,
            store_id=stores[store],
            object_type=action.split(".")[0],
            object_id=str(number),
            object_repr=f"event {number}",
            after={"role": "manager"} if action.startswith("membership.") else None,
        )
    assert audit_relay_pending() == len(STORE_AUDIT_LOG)


EVERY_EVENT = [(sequence, True) for sequence in range(8, 0, -1)]
# What each reader sees of STORE_AUDIT_LOG: (sequence, whether the address is shown),
# newest first (README, "Who sees which audit events").
SEEN_BY = {
    # Stock and reservation events of their store, without addresses.
    "viewer": [(2, False), (1, False)],
    "clerk": [(2, False), (1, False)],
    # Every event of their store, with addresses.
    "manager": [(4, True), (3, True), (2, True), (1, True)],
    "manager_and_clerk": [(5, False), (4, True), (3, True), (2, True), (1, True)],
    "staff_without_permissions": [],
    # Staff hold the role their stock permissions give, in every store.
    "staff_with_stock_view": [(5, False), (2, False), (1, False)],
    "staff_with_stock_change": [(6, True), (5, True), (4, True), (3, True), (2, True), (1, True)],
    # audit.view_auditevent: everything.
    "staff_with_view_permissions": EVERY_EVENT,
    "staff_with_audit_view": EVERY_EVENT,
    "superuser": EVERY_EVENT,
}


@dataclass
class Reader:
    user: object
    sees: list[tuple[int, bool]]


@pytest.fixture
def audit_reader(request, berlin, hamburg) -> Reader:
    """The reader named by the (indirect) parameter, with what they should see."""
    name = request.param

    def staff(*permissions):
        return StaffFactory(username=name, permissions=list(permissions))

    makers = {
        "viewer": lambda: member(name, berlin, Role.VIEWER),
        "clerk": lambda: member(name, berlin, Role.CLERK),
        "manager": lambda: member(name, berlin, Role.MANAGER),
        "manager_and_clerk": lambda: _manager_of_berlin_clerk_of_hamburg(name, berlin, hamburg),
        "staff_without_permissions": lambda: staff(),
        "staff_with_view_permissions": lambda: staff(*inventory_permissions("view")),
        "staff_with_stock_view": lambda: staff(STOCK_VIEW),
        "staff_with_stock_change": lambda: staff(STOCK_VIEW, STOCK_CHANGE),
        "staff_with_audit_view": lambda: staff("audit.view_auditevent"),
        "superuser": lambda: UserFactory(username=name, is_staff=True, is_superuser=True),
    }
    return Reader(makers[name](), SEEN_BY[name])


def record_price_changes(object_ids) -> None:
    """Record, through the service, a price change of each product in ``object_ids``
    (``SKU-00001`` for 1): one outbox entry each, in order, not relayed."""
    for number in object_ids:
        audit_record(
            action="product.update",
            object_type="catalog.product",
            object_id=number,
            object_repr=f"SKU-{number:05d}",
            before={"price": "9.99"},
            after={"price": f"{number}.00"},
        )


def _manager_of_berlin_clerk_of_hamburg(name, berlin, hamburg):
    user = member(name, berlin, Role.MANAGER)
    MembershipFactory(user=user, store=hamburg, role=Role.CLERK)
    return user
