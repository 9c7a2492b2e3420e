"""What the audit log records: one event per change, saying who made it, from where, to
which object, and its values before and after; nothing for a refused change.

Changes are made the way clients make them (the API, the admin, the login pages), except
the expiry sweep, which is no request. These tests run inside one rolled-back transaction,
so no relay is sent on commit: ``AuditLog.events`` relays the outbox itself.
"""

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import User
from audit.models import AuditEvent, AuditOutboxEntry
from audit.services import audit_relay_pending
from catalog.models import Product
from stock.models import Movement, Reservation, StockLevel
from stock.services import StockLine, reservation_create, reservations_expire_due, stock_receive
from stores.models import Membership, Role, Store
from tests.api import api_client, assert_error
from tests.factories import (
    TEST_PASSWORD,
    MembershipFactory,
    UserFactory,
)

BASE = "/api/v1/stores/berlin-01"
LOCALHOST = "127.0.0.1"
CLIENT_IP = "203.0.113.9"
UUID_HEX = re.compile(r"^[0-9a-f]{32}$")

DESCRIBED_FIELDS = [
    "action",
    "actor_id",
    "actor_username",
    "ip",
    "request_id",
    "store_id",
    "object_type",
    "object_id",
    "object_repr",
    "before",
    "after",
]


class AuditLog:
    """The audit events recorded since it was created (the outbox is relayed first, so
    that what the test arranged is not counted)."""

    def __init__(self):
        audit_relay_pending()
        last = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True)
        self.after_sequence = last.first() or 0

    def events(self) -> list[AuditEvent]:
        audit_relay_pending()
        return list(
            AuditEvent.objects.filter(sequence__gt=self.after_sequence).order_by("sequence")
        )

    def described(self) -> list[dict]:
        return [described(event) for event in self.events()]


def described(event: AuditEvent) -> dict:
    return {field: getattr(event, field) for field in DESCRIBED_FIELDS}


def over_http(response, user=None, *, ip=LOCALHOST) -> dict:
    """The origin fields of a change made by ``user`` (None: anonymous) in ``response``'s
    request."""
    return {
        "actor_id": user.pk if user else None,
        "actor_username": user.username if user else "",
        "ip": ip,
        "request_id": response["X-Request-ID"],
    }


def event_json(event: AuditEvent) -> str:
    """Every stored field of the event, as text."""
    return json.dumps(AuditEvent.objects.filter(pk=event.pk).values().get(), default=str)


def levels(on_hand, reserved, version) -> dict:
    return {"on_hand": on_hand, "reserved": reserved, "version": version}


def movement_event(store, kind, origin: dict, *, before: dict, after: dict) -> dict:
    """The event of the last TEE movement of ``kind`` in ``store``."""
    return {
        "action": f"stock.{kind}",
        **origin,
        "store_id": store.pk,
        "object_type": "stock.movement",
        "object_id": str(movement(store, kind).pk),
        "object_repr": f"TEE @ {store.code}",
        "before": before,
        "after": after,
    }


def movement(store, kind) -> Movement:
    """The last movement of ``kind`` in ``store``."""
    return Movement.objects.filter(store=store, kind=kind).latest("id")


# --- Fixtures -----------------------------------------------------------------------


@pytest.fixture
def stocked(berlin, tee):
    """Ten TEE in Berlin (version 1), received by the system."""
    stock_receive(store=berlin, product=tee, quantity=10)


@pytest.fixture
def newcomer(db):
    return UserFactory(username="newcomer")


def admin_client(*permissions: str) -> tuple[Client, User]:
    """A browser session of a staff user holding ``permissions`` ("app.codename")."""
    user = UserFactory(username="admin-staff", is_staff=True)
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client, user


# --- Stock movements ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path, body, kind, after",
    [
        ("receive", {"quantity": 5, "reference": "PO-9"}, "receive", levels(15, 0, 2)),
        ("adjust", {"delta": -2, "reason": "damaged"}, "adjust", levels(8, 0, 2)),
        ("set", {"on_hand": 12, "reason": "correction"}, "set", levels(12, 0, 2)),
        ("purchase", {"quantity": 3, "reference": "order-1"}, "sale", levels(7, 0, 2)),
    ],
)
def test_a_stock_operation_records_its_movement(stocked, berlin, manager, path, body, kind, after):
    log = AuditLog()

    response = api_client(manager).post(f"{BASE}/stock/TEE/{path}/", body, format="json")

    assert response.status_code == 200
    assert log.described() == [
        {
            "action": f"stock.{kind}",
            **over_http(response, manager),
            "store_id": berlin.pk,
            "object_type": "stock.movement",
            "object_id": str(movement(berlin, kind).pk),
            "object_repr": "TEE @ berlin-01",
            "before": levels(10, 0, 1),
            "after": after,
        }
    ]


def test_a_clerks_purchase_is_recorded_with_the_clerk_as_actor(stocked, berlin, clerk):
    log = AuditLog()

    response = api_client(clerk).post(f"{BASE}/stock/TEE/purchase/", {"quantity": 4}, format="json")

    assert response.status_code == 200
    assert log.described() == [
        movement_event(
            berlin,
            "sale",
            over_http(response, clerk),
            before=levels(10, 0, 1),
            after=levels(6, 0, 2),
        )
    ]


def test_a_transfer_records_a_movement_on_each_side(stocked, berlin, hamburg, manager):
    MembershipFactory(user=manager, store=hamburg, role=Role.VIEWER)
    log = AuditLog()

    response = api_client(manager).post(
        f"{BASE}/transfers/",
        {"to_store": "hamburg-01", "lines": [{"sku": "TEE", "quantity": 4}]},
        format="json",
    )

    assert response.status_code == 200
    origin = over_http(response, manager)
    assert log.described() == [
        movement_event(
            berlin, "transfer_out", origin, before=levels(10, 0, 1), after=levels(6, 0, 2)
        ),
        movement_event(
            hamburg, "transfer_in", origin, before=levels(0, 0, 0), after=levels(4, 0, 1)
        ),
    ]


def test_a_reorder_point_change_records_the_old_and_new_point(stocked, berlin, tee, manager):
    log = AuditLog()

    response = api_client(manager).patch(f"{BASE}/stock/TEE/", {"reorder_point": 5}, format="json")

    assert response.status_code == 200
    assert log.described() == [
        {
            "action": "stock.reorder_point",
            **over_http(response, manager),
            "store_id": berlin.pk,
            "object_type": "stock.stocklevel",
            "object_id": str(StockLevel.objects.get(store=berlin, product=tee).pk),
            "object_repr": "TEE @ berlin-01",
            "before": {"reorder_point": 0},
            "after": {"reorder_point": 5},
        }
    ]


# --- Reservations -------------------------------------------------------------------


def test_a_reservation_created_then_committed_records_each_step(stocked, berlin, clerk):
    client = api_client(clerk)
    log = AuditLog()

    created = client.post(
        f"{BASE}/reservations/",
        {"lines": [{"sku": "TEE", "quantity": 3}], "ttl_seconds": 600, "reference": "cart-1"},
        format="json",
    )
    reservation = Reservation.objects.get()
    creation = log.described()
    log = AuditLog()
    committed = client.post(f"{BASE}/reservations/{reservation.pk}/commit/")

    assert (created.status_code, committed.status_code) == (201, 200)
    reservation_fields = {
        "store_id": berlin.pk,
        "object_type": "stock.reservation",
        "object_id": str(reservation.pk),
        "object_repr": f"reservation:{reservation.pk}",
    }
    assert creation == [
        movement_event(
            berlin,
            "reserve",
            over_http(created, clerk),
            before=levels(10, 0, 1),
            after=levels(10, 3, 2),
        ),
        {
            "action": "reservation.create",
            **over_http(created, clerk),
            **reservation_fields,
            "before": None,
            "after": {
                "status": "active",
                "expires_at": reservation.expires_at.isoformat(),
                "reference": "cart-1",
                "lines": [{"sku": "TEE", "quantity": 3}],
            },
        },
    ]
    assert log.described() == [
        movement_event(
            berlin,
            "commit",
            over_http(committed, clerk),
            before=levels(10, 3, 2),
            after=levels(7, 0, 3),
        ),
        {
            "action": "reservation.commit",
            **over_http(committed, clerk),
            **reservation_fields,
            "before": {"status": "active"},
            "after": {"status": "committed", "closed_via": "commit"},
        },
    ]


def test_a_repeated_commit_records_nothing_more(stocked, berlin, tee, clerk):
    client = api_client(clerk)
    reservation = reservation_create(store=berlin, lines=[StockLine(tee, 2)], actor=clerk)
    client.post(f"{BASE}/reservations/{reservation.pk}/commit/")
    log = AuditLog()

    again = client.post(f"{BASE}/reservations/{reservation.pk}/commit/")

    assert again.status_code == 200
    assert log.events() == []


def test_a_release_records_the_units_given_back(stocked, berlin, tee, clerk):
    reservation = reservation_create(store=berlin, lines=[StockLine(tee, 3)], actor=clerk)
    log = AuditLog()

    response = api_client(clerk).post(f"{BASE}/reservations/{reservation.pk}/release/")

    assert response.status_code == 200
    assert log.described() == [
        movement_event(
            berlin,
            "release",
            over_http(response, clerk),
            before=levels(10, 3, 2),
            after=levels(10, 0, 3),
        ),
        {
            "action": "reservation.release",
            **over_http(response, clerk),
            "store_id": berlin.pk,
            "object_type": "stock.reservation",
            "object_id": str(reservation.pk),
            "object_repr": f"reservation:{reservation.pk}",
            "before": {"status": "active"},
            "after": {"status": "released", "closed_via": "release"},
        },
    ]


def test_an_expiry_by_the_sweep_has_no_actor_address_or_request(stocked, berlin, tee, clerk):
    reservation = reservation_create(store=berlin, lines=[StockLine(tee, 3)], actor=clerk)
    Reservation.objects.filter(pk=reservation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    log = AuditLog()

    expired = reservations_expire_due(via="sweep")

    assert expired == 1
    system = {"actor_id": None, "actor_username": "", "ip": None, "request_id": ""}
    assert log.described() == [
        movement_event(berlin, "expire", system, before=levels(10, 3, 2), after=levels(10, 0, 3)),
        {
            "action": "reservation.expire",
            **system,
            "store_id": berlin.pk,
            "object_type": "stock.reservation",
            "object_id": str(reservation.pk),
            "object_repr": f"reservation:{reservation.pk}",
            "before": {"status": "active"},
            "after": {"status": "expired", "closed_via": "sweep"},
        },
    ]


# --- Catalog and stores -------------------------------------------------------------


def test_a_product_creation_records_every_field(staff):
    log = AuditLog()

    response = api_client(staff).post(
        "/api/v1/products/",
        {"sku": "CAP-1", "name": "Cap", "price": "14.5", "description": "Wool"},
        format="json",
    )

    assert response.status_code == 201
    assert log.described() == [
        {
            "action": "product.create",
            **over_http(response, staff),
            "store_id": None,
            "object_type": "catalog.product",
            "object_id": str(Product.objects.get(sku="CAP-1").pk),
            "object_repr": "CAP-1",
            "before": None,
            "after": {
                "sku": "CAP-1",
                "name": "Cap",
                "description": "Wool",
                "price": "14.50",
                "is_active": True,
            },
        }
    ]


def test_a_product_update_records_only_the_changed_fields(staff, tee):
    log = AuditLog()

    response = api_client(staff).patch(
        "/api/v1/products/TEE/", {"price": "9.5", "is_active": False}, format="json"
    )

    assert response.status_code == 200
    assert log.described() == [
        {
            "action": "product.update",
            **over_http(response, staff),
            "store_id": None,
            "object_type": "catalog.product",
            "object_id": str(tee.pk),
            "object_repr": "TEE",
            "before": {"price": "9.99", "is_active": True},
            "after": {"price": "9.50", "is_active": False},
        }
    ]


def test_a_store_creation_records_the_new_store(staff):
    log = AuditLog()

    response = api_client(staff).post(
        "/api/v1/stores/", {"code": "paris-01", "name": "Paris"}, format="json"
    )

    assert response.status_code == 201
    paris = Store.objects.get(code="paris-01")
    assert log.described() == [
        {
            "action": "store.create",
            **over_http(response, staff),
            "store_id": paris.pk,
            "object_type": "stores.store",
            "object_id": str(paris.pk),
            "object_repr": "paris-01",
            "before": None,
            "after": {"code": "paris-01", "name": "Paris", "is_active": True},
        }
    ]


def test_a_store_update_records_only_the_changed_fields(staff, berlin):
    log = AuditLog()

    response = api_client(staff).patch(
        "/api/v1/stores/berlin-01/", {"name": "Berlin Mitte", "is_active": False}, format="json"
    )

    assert response.status_code == 200
    assert log.described() == [
        {
            "action": "store.update",
            **over_http(response, staff),
            "store_id": berlin.pk,
            "object_type": "stores.store",
            "object_id": str(berlin.pk),
            "object_repr": "berlin-01",
            "before": {"name": "Berlin", "is_active": True},
            "after": {"name": "Berlin Mitte", "is_active": False},
        }
    ]


@pytest.mark.parametrize(
    "path, body, action, before, after",
    [
        (
            "/api/v1/products/TEE/",
            {"name": "T-shirt", "price": "9.50"},
            "product.update",
            {"price": "9.99"},
            {"price": "9.50"},
        ),
        (
            "/api/v1/stores/berlin-01/",
            {"name": "Berlin", "is_active": False},
            "store.update",
            {"is_active": True},
            {"is_active": False},
        ),
    ],
)
def test_an_update_resending_an_unchanged_value_records_only_what_changed(
    staff, tee, berlin, path, body, action, before, after
):
    log = AuditLog()

    response = api_client(staff).patch(path, body, format="json")

    assert response.status_code == 200
    assert [(e["action"], e["before"], e["after"]) for e in log.described()] == [
        (action, before, after)
    ]


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/v1/products/TEE/", {"name": "T-shirt", "price": "9.99"}),
        ("/api/v1/stores/berlin-01/", {"name": "Berlin"}),
    ],
)
def test_an_update_changing_nothing_records_nothing(staff, tee, berlin, path, body):
    """As a grant of the role a member already has, and an admin save of an unchanged form."""
    log = AuditLog()

    response = api_client(staff).patch(path, body, format="json")

    assert response.status_code == 200
    assert log.events() == []


def membership_event(response, actor, store, membership_id, *, before, after) -> dict:
    return {
        "action": "membership.grant" if after else "membership.revoke",
        **over_http(response, actor),
        "store_id": store.pk,
        "object_type": "stores.membership",
        "object_id": str(membership_id),
        "object_repr": f"newcomer @ {store.code}",
        "before": before,
        "after": after,
    }


def test_adding_a_member_records_a_grant(berlin, manager, newcomer):
    log = AuditLog()

    response = api_client(manager).post(
        f"{BASE}/members/", {"username": "newcomer", "role": "clerk"}, format="json"
    )

    assert response.status_code == 201
    membership = Membership.objects.get(user=newcomer)
    assert log.described() == [
        membership_event(
            response,
            manager,
            berlin,
            membership.pk,
            before=None,
            after={"user": "newcomer", "role": "clerk"},
        )
    ]


def test_a_role_change_records_a_grant_with_the_old_role(berlin, manager, newcomer):
    membership = MembershipFactory(user=newcomer, store=berlin, role=Role.CLERK)
    log = AuditLog()

    response = api_client(manager).post(
        f"{BASE}/members/", {"username": "newcomer", "role": "manager"}, format="json"
    )

    assert response.status_code == 200
    assert log.described() == [
        membership_event(
            response,
            manager,
            berlin,
            membership.pk,
            before={"user": "newcomer", "role": "clerk"},
            after={"user": "newcomer", "role": "manager"},
        )
    ]


def test_granting_the_role_a_member_already_has_records_nothing(berlin, manager, newcomer):
    MembershipFactory(user=newcomer, store=berlin, role=Role.CLERK)
    log = AuditLog()

    response = api_client(manager).post(
        f"{BASE}/members/", {"username": "newcomer", "role": "clerk"}, format="json"
    )

    assert response.status_code == 200
    assert log.events() == []


def test_removing_a_member_records_a_revocation(berlin, manager, newcomer):
    membership = MembershipFactory(user=newcomer, store=berlin, role=Role.CLERK)
    log = AuditLog()

    response = api_client(manager).delete(f"{BASE}/members/newcomer/")

    assert response.status_code == 204
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert log.described() == [
        membership_event(
            response,
            manager,
            berlin,
            membership.pk,
            before={"user": "newcomer", "role": "clerk"},
            after=None,
        )
    ]


# --- Credentials --------------------------------------------------------------------


def test_a_token_is_recorded_once_and_its_key_never(db):
    alice = UserFactory(username="alice")
    credentials = {"username": "alice", "password": TEST_PASSWORD}
    log = AuditLog()

    first = APIClient().post(
        "/api/v1/auth/token/", credentials, format="json", REMOTE_ADDR=CLIENT_IP
    )
    created = log.events()
    log = AuditLog()
    second = APIClient().post("/api/v1/auth/token/", credentials, format="json")

    key = first.json()["token"]
    assert (first.status_code, second.status_code, second.json()["token"]) == (200, 200, key)
    assert [described(event) for event in created] == [
        {
            "action": "token.create",
            **over_http(first, alice, ip=CLIENT_IP),
            "store_id": None,
            "object_type": "authtoken.token",
            "object_id": str(alice.pk),
            "object_repr": "API token of alice",
            "before": None,
            "after": None,
        }
    ]
    assert key not in event_json(created[0])
    assert log.events() == []


def failed_login_event(response, username) -> dict:
    return {
        "action": "auth.login_failed",
        **over_http(response, None, ip=CLIENT_IP),
        "store_id": None,
        "object_type": "accounts.user",
        "object_id": "",
        "object_repr": username,
        "before": None,
        "after": {"username": username},
    }


def test_a_failed_token_login_records_the_username_and_address_never_the_password(db):
    UserFactory(username="alice")
    log = AuditLog()

    response = APIClient().post(
        "/api/v1/auth/token/",
        {"username": "alice", "password": "wrong horse"},
        format="json",
        REMOTE_ADDR=CLIENT_IP,
    )

    assert_error(response, 401, "authentication_failed")
    events = log.events()
    assert [described(event) for event in events] == [failed_login_event(response, "alice")]
    assert "wrong horse" not in event_json(events[0])
    assert not AuditOutboxEntry.objects.exists()


def test_a_failed_admin_login_records_the_username_and_address_never_the_password(db):
    UserFactory(username="alice", is_staff=True)
    log = AuditLog()

    response = Client().post(
        "/admin/login/",
        {"username": "alice", "password": "wrong horse", "next": "/admin/"},
        REMOTE_ADDR=CLIENT_IP,
    )

    assert response.status_code == 200  # the login form again, with its error
    events = log.events()
    assert [described(event) for event in events] == [failed_login_event(response, "alice")]
    assert "wrong horse" not in event_json(events[0])


# --- Where a change comes from ------------------------------------------------------


def test_the_client_address_and_request_id_are_recorded_and_the_id_echoed(stocked, berlin, manager):
    log = AuditLog()

    response = api_client(manager).post(
        f"{BASE}/stock/TEE/receive/",
        {"quantity": 1},
        format="json",
        HTTP_X_REQUEST_ID="abc-123",
        REMOTE_ADDR=CLIENT_IP,
    )

    assert response["X-Request-ID"] == "abc-123"
    [event] = log.events()
    assert (event.ip, event.request_id, event.actor_username) == (CLIENT_IP, "abc-123", "manager")


@pytest.mark.parametrize("sent", ["a" * 64, "A-z.0_9:x"])
def test_a_plain_request_id_of_up_to_64_characters_is_kept(stocked, manager, sent):
    log = AuditLog()

    response = api_client(manager).post(
        f"{BASE}/stock/TEE/receive/", {"quantity": 1}, format="json", HTTP_X_REQUEST_ID=sent
    )

    assert response["X-Request-ID"] == sent
    assert [event.request_id for event in log.events()] == [sent]


@pytest.mark.parametrize("sent", ["bad id!", "a" * 65, "", "id;drop", "id\tx"])
def test_any_other_request_id_is_replaced_by_a_fresh_one(stocked, manager, sent):
    log = AuditLog()

    response = api_client(manager).post(
        f"{BASE}/stock/TEE/receive/", {"quantity": 1}, format="json", HTTP_X_REQUEST_ID=sent
    )

    assert response.status_code == 200
    replaced = response["X-Request-ID"]
    assert UUID_HEX.match(replaced), replaced
    assert [event.request_id for event in log.events()] == [replaced]


def test_a_request_without_an_id_gets_one(stocked, manager):
    log = AuditLog()

    response = api_client(manager).post(
        f"{BASE}/stock/TEE/receive/", {"quantity": 1}, format="json"
    )

    assert UUID_HEX.match(response["X-Request-ID"])
    assert [event.request_id for event in log.events()] == [response["X-Request-ID"]]


def test_each_request_gets_its_own_id(stocked, manager):
    client = api_client(manager)
    log = AuditLog()

    first = client.post(f"{BASE}/stock/TEE/receive/", {"quantity": 1}, format="json")
    second = client.post(f"{BASE}/stock/TEE/receive/", {"quantity": 1}, format="json")

    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert [event.request_id for event in log.events()] == [
        first["X-Request-ID"],
        second["X-Request-ID"],
    ]


def test_behind_a_trusted_proxy_the_address_it_reports_is_recorded(stocked, manager, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    log = AuditLog()

    response = api_client(manager).post(
        f"{BASE}/stock/TEE/receive/",
        {"quantity": 1},
        format="json",
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR=f"198.51.100.1, {CLIENT_IP}",
    )

    assert response.status_code == 200
    assert [event.ip for event in log.events()] == [CLIENT_IP]


def test_a_replayed_idempotent_request_records_nothing_more(stocked, clerk):
    client = api_client(clerk)
    client.post(
        f"{BASE}/stock/TEE/purchase/", {"quantity": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    log = AuditLog()

    replay = client.post(
        f"{BASE}/stock/TEE/purchase/", {"quantity": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )

    assert (replay.status_code, replay["Idempotent-Replayed"]) == (200, "true")
    assert log.events() == []


# --- Refused changes ----------------------------------------------------------------


def test_a_refused_purchase_records_nothing(stocked, berlin, tee, clerk):
    log = AuditLog()

    response = api_client(clerk).post(
        f"{BASE}/stock/TEE/purchase/", {"quantity": 11}, format="json"
    )

    assert_error(response, 409, "insufficient_stock")
    assert not AuditOutboxEntry.objects.exists()
    assert log.events() == []
    assert StockLevel.objects.get(store=berlin, product=tee).version == 1
    assert Movement.objects.count() == 1


@pytest.mark.parametrize(
    "who, method, path, body",
    [
        ("clerk", "post", f"{BASE}/stock/TEE/purchase/", {"quantity": 0}),
        ("manager", "post", f"{BASE}/stock/TEE/receive/", {"quantity": "many"}),
        ("manager", "post", f"{BASE}/stock/TEE/adjust/", {"delta": -1, "reason": "stolen"}),
        ("manager", "patch", f"{BASE}/stock/TEE/", {"reorder_point": -1}),
        ("manager", "post", f"{BASE}/transfers/", {"to_store": "berlin-01", "lines": []}),
        (
            "manager",
            "post",
            f"{BASE}/transfers/",
            {"to_store": "berlin-01", "lines": [{"sku": "TEE", "quantity": 1}]},
        ),
        ("clerk", "post", f"{BASE}/reservations/", {"lines": [{"sku": "TEE", "quantity": -1}]}),
        ("manager", "post", f"{BASE}/members/", {"username": "newcomer", "role": "owner"}),
        ("staff", "post", "/api/v1/products/", {"sku": "CAP-1", "name": "Cap", "price": "x"}),
        ("staff", "patch", "/api/v1/products/TEE/", {"price": "-1"}),
        ("staff", "post", "/api/v1/stores/", {"code": "Bad Code", "name": "x"}),
        ("staff", "patch", "/api/v1/stores/berlin-01/", {"is_active": "sometimes"}),
    ],
)
def test_a_change_refused_as_bad_input_records_nothing(
    stocked, berlin, tee, request, newcomer, who, method, path, body
):
    user = request.getfixturevalue(who)
    log = AuditLog()

    response = getattr(api_client(user), method)(path, body, format="json")

    assert_error(response, 400)
    assert not AuditOutboxEntry.objects.exists()
    assert log.events() == []
    assert StockLevel.objects.get(store=berlin, product=tee).version == 1
    assert (Product.objects.get().price, Store.objects.get().name) == (tee.price, "Berlin")


def test_with_auditing_disabled_a_purchase_writes_no_outbox_entry(stocked, berlin, clerk, settings):
    log = AuditLog()
    settings.AUDIT_ENABLED = False

    response = api_client(clerk).post(f"{BASE}/stock/TEE/purchase/", {"quantity": 2}, format="json")

    assert response.status_code == 200
    assert movement(berlin, "sale").on_hand_after == 8
    assert not AuditOutboxEntry.objects.exists()
    assert log.events() == []


# --- The admin ----------------------------------------------------------------------


def test_an_admin_product_change_records_the_update_and_the_admin_action(tee):
    client, admin = admin_client("catalog.view_product", "catalog.change_product")
    log = AuditLog()

    response = client.post(
        f"/admin/catalog/product/{tee.pk}/change/",
        {
            "name": "T-shirt",
            "description": "",
            "price": "9.50",
            "is_active": "on",
            "_save": "Save",
        },
    )

    assert response.status_code == 302, response.content[:2000]
    tee.refresh_from_db()
    assert str(tee.price) == "9.50"
    product_fields = {
        "store_id": None,
        "object_type": "catalog.product",
        "object_id": str(tee.pk),
    }
    assert log.described() == [
        {
            "action": "product.update",
            **over_http(response, admin),
            **product_fields,
            "object_repr": "TEE",
            "before": {"price": "9.99"},
            "after": {"price": "9.50"},
        },
        {
            "action": "admin.change",
            **over_http(response, admin),
            **product_fields,
            "object_repr": "TEE T-shirt",
            "before": None,
            "after": {"message": "Changed Price."},
        },
    ]


def test_an_admin_price_change_is_recorded_as_stored_with_two_decimals(tee):
    client, _ = admin_client("catalog.view_product", "catalog.change_product")
    log = AuditLog()

    response = client.post(
        f"/admin/catalog/product/{tee.pk}/change/",
        {"name": "T-shirt", "description": "", "price": "9.5", "is_active": "on", "_save": "Save"},
    )

    assert response.status_code == 302, response.content[:2000]
    tee.refresh_from_db()
    assert str(tee.price) == "9.50"
    assert [(e["action"], e["after"]) for e in log.described()] == [
        ("product.update", {"price": "9.50"}),
        ("admin.change", {"message": "Changed Price."}),
    ]


def test_a_token_added_in_the_admin_is_recorded_without_its_key(db):
    client, admin = admin_client("authtoken.view_tokenproxy", "authtoken.add_tokenproxy")
    alice = UserFactory(username="alice")
    log = AuditLog()

    response = client.post("/admin/authtoken/tokenproxy/add/", {"user": str(alice.pk)})

    assert response.status_code == 302, response.content[:2000]
    key = Token.objects.get(user=alice).key
    events = log.events()
    assert [described(event) for event in events] == [
        {
            "action": "admin.add",
            **over_http(response, admin),
            "store_id": None,
            "object_type": "authtoken.tokenproxy",
            "object_id": "",
            "object_repr": "",
            "before": None,
            "after": {"message": "Added."},
        }
    ]
    assert key not in event_json(events[0])


def membership_management_form(total: int, initial: int = 0) -> dict:
    return {
        "memberships-TOTAL_FORMS": str(total),
        "memberships-INITIAL_FORMS": str(initial),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }


STORE_AND_MEMBERSHIP_PERMISSIONS = (
    "stores.view_store",
    "stores.add_store",
    "stores.change_store",
    "stores.view_membership",
    "stores.add_membership",
    "stores.change_membership",
    "stores.delete_membership",
)


def test_an_admin_store_addition_records_the_creation_and_the_admin_action(db):
    client, admin = admin_client(*STORE_AND_MEMBERSHIP_PERMISSIONS)
    log = AuditLog()

    response = client.post(
        "/admin/stores/store/add/",
        {"code": "paris-01", "name": "Paris", "is_active": "on", "_save": "Save"}
        | membership_management_form(0),
    )

    assert response.status_code == 302, response.content[:2000]
    paris = Store.objects.get(code="paris-01")
    store_fields = {
        **over_http(response, admin),
        "store_id": paris.pk,
        "object_type": "stores.store",
        "object_id": str(paris.pk),
        "object_repr": "paris-01",
        "before": None,
    }
    assert log.described() == [
        {
            "action": "store.create",
            **store_fields,
            "after": {"code": "paris-01", "name": "Paris", "is_active": True},
        },
        {"action": "admin.add", **store_fields, "after": {"message": "Added."}},
    ]


def test_a_membership_added_in_the_stores_admin_inline_records_a_grant(berlin, newcomer):
    client, admin = admin_client(*STORE_AND_MEMBERSHIP_PERMISSIONS)
    log = AuditLog()

    response = client.post(
        f"/admin/stores/store/{berlin.pk}/change/",
        {
            "name": "Berlin",
            "is_active": "on",
            "memberships-0-id": "",
            "memberships-0-store": str(berlin.pk),
            "memberships-0-user": str(newcomer.pk),
            "memberships-0-role": "clerk",
            "_save": "Save",
        }
        | membership_management_form(1),
    )

    assert response.status_code == 302, response.content[:2000]
    membership = Membership.objects.get(store=berlin, user=newcomer)
    assert membership.role == "clerk"
    assert log.described() == [
        membership_event(
            response,
            admin,
            berlin,
            membership.pk,
            before=None,
            after={"user": "newcomer", "role": "clerk"},
        ),
        {
            "action": "admin.change",
            **over_http(response, admin),
            "store_id": berlin.pk,
            "object_type": "stores.store",
            "object_id": str(berlin.pk),
            "object_repr": "berlin-01",
            "before": None,
            "after": {"message": "Added membership “newcomer is clerk of berlin-01”."},
        },
    ]


USER_ADMIN_PERMISSIONS = ("accounts.view_user", "accounts.change_user", "accounts.delete_user")


def delete_selected_users(client, users):
    return client.post(
        "/admin/accounts/user/",
        {
            "action": "delete_selected",
            "select_across": "0",
            "index": "0",
            "_selected_action": [str(user.pk) for user in users],
            "post": "yes",
        },
    )


def test_deleting_several_users_at_once_in_the_admin_records_each_deletion(db):
    client, admin = admin_client(*USER_ADMIN_PERMISSIONS)
    doomed = [UserFactory(username="leaver-1"), UserFactory(username="leaver-2")]
    log = AuditLog()

    response = delete_selected_users(client, doomed)

    assert response.status_code == 302, response.content[:2000]
    assert not User.objects.filter(username__startswith="leaver").exists()
    assert sorted(log.described(), key=lambda event: event["object_repr"]) == [
        {
            "action": "admin.delete",
            **over_http(response, admin),
            "store_id": None,
            "object_type": "accounts.user",
            "object_id": str(user.pk),
            "object_repr": user.username,
            "before": None,
            "after": {"message": ""},
        }
        for user in doomed
    ]


def test_deleting_one_user_with_the_admin_action_records_exactly_one_deletion(db):
    client, admin = admin_client(*USER_ADMIN_PERMISSIONS)
    leaver = UserFactory(username="leaver")
    log = AuditLog()

    response = delete_selected_users(client, [leaver])

    assert response.status_code == 302, response.content[:2000]
    assert not User.objects.filter(username="leaver").exists()
    assert log.described() == [
        {
            "action": "admin.delete",
            **over_http(response, admin),
            "store_id": None,
            "object_type": "accounts.user",
            "object_id": str(leaver.pk),
            "object_repr": "leaver",
            "before": None,
            "after": {"message": ""},
        }
    ]


def test_the_delete_confirmation_page_records_nothing(db):
    client, _ = admin_client(*USER_ADMIN_PERMISSIONS)
    doomed = [UserFactory(username="leaver-1"), UserFactory(username="leaver-2")]
    log = AuditLog()

    response = client.post(
        "/admin/accounts/user/",
        {
            "action": "delete_selected",
            "select_across": "0",
            "index": "0",
            "_selected_action": [str(user.pk) for user in doomed],
        },
    )

    assert response.status_code == 200  # "Are you sure?"
    assert User.objects.filter(username__startswith="leaver").count() == 2
    assert log.events() == []
