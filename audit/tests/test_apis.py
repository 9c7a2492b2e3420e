"""GET /api/v1/audit/: the audit log, newest first, filtered, and only what the user may see.

Staff holding ``audit.view_auditevent`` see every event; managers every event of their
stores; viewers and clerks the stock and reservation events of their stores, without the
address; nobody sees events of other stores, and only the first those of no store
(catalog changes, failed logins).
"""

from datetime import UTC, datetime

import pytest
from django.contrib.auth import authenticate
from rest_framework.test import APIClient

from audit.models import AuditChainHead, AuditEvent, AuditOutboxEntry
from audit.services import audit_relay_pending
from catalog.services import product_create
from stock.services import stock_receive, stock_set_reorder_point
from stores.models import Role
from tests.api import api_client, assert_error
from tests.factories import (
    MembershipFactory,
    ProductFactory,
    UserFactory,
    member,
)

URL = "/api/v1/audit/"
FIELDS = {
    "sequence",
    "occurred_at",
    "recorded_at",
    "actor",
    "ip",
    "request_id",
    "action",
    "store",
    "object_type",
    "object_id",
    "object_repr",
    "before",
    "after",
    "previous_hash",
    "hash",
}


@pytest.fixture
def manager(berlin):
    return member("berlin-manager", berlin, Role.MANAGER)


@pytest.fixture
def viewer(berlin):
    return member("berlin-viewer", berlin, Role.VIEWER)


@pytest.fixture
def history(berlin, hamburg, manager, staff):
    """Six relayed events, oldest first, of two stores and of no store."""
    hamburg_manager = member("hamburg-manager", hamburg, Role.MANAGER)
    tee = ProductFactory(sku="TEE")
    stock_receive(store=berlin, product=tee, quantity=10, actor=manager)  # 1
    stock_receive(store=hamburg, product=tee, quantity=4, actor=hamburg_manager)  # 2
    product_create(sku="CAP", name="Cap", price="5.00", actor=staff)  # 3
    assert authenticate(username="intruder", password="guess") is None  # 4
    stock_set_reorder_point(store=berlin, product=tee, reorder_point=3, actor=manager)  # 5
    stock_receive(store=hamburg, product=tee, quantity=1, actor=hamburg_manager)  # 6
    assert audit_relay_pending() == 6


ALL_ACTIONS_NEWEST_FIRST = [
    "stock.receive",
    "stock.reorder_point",
    "auth.login_failed",
    "product.create",
    "stock.receive",
    "stock.receive",
]


def results(response) -> list[dict]:
    assert response.status_code == 200, (response.status_code, response.content[:500])
    return response.json()["results"]


def listed(response) -> list[tuple]:
    """(sequence, action, store, actor) of each listed event."""
    return [
        (event["sequence"], event["action"], event["store"], event["actor"])
        for event in results(response)
    ]


def outbox_entry(**fields) -> AuditOutboxEntry:
    return AuditOutboxEntry.objects.create(
        **{
            "occurred_at": datetime(2025, 1, 1, tzinfo=UTC),
            "action": "stock.sale",
            "object_type": "stock.movement",
        }
        | fields
    )


def test_without_credentials_it_is_401(history):
    assert_error(APIClient().get(URL), 401, "not_authenticated")


def test_staff_see_every_event_newest_first(history, staff):
    response = api_client(staff).get(URL)

    assert listed(response) == [
        (6, "stock.receive", "hamburg-01", "hamburg-manager"),
        (5, "stock.reorder_point", "berlin-01", "berlin-manager"),
        (4, "auth.login_failed", None, ""),
        (3, "product.create", None, "staffer"),
        (2, "stock.receive", "hamburg-01", "hamburg-manager"),
        (1, "stock.receive", "berlin-01", "berlin-manager"),
    ]
    assert "count" not in response.json()  # cursor pagination counts nothing


def test_an_event_has_exactly_the_documented_fields(berlin, staff):
    outbox_entry(
        occurred_at=datetime(2025, 1, 2, 10, 30, tzinfo=UTC),
        actor_id=staff.pk,
        actor_username="staffer",
        ip="203.0.113.9",
        request_id="abc-123",
        action="stock.sale",
        store_id=berlin.pk,
        object_type="stock.movement",
        object_id="7",
        object_repr="TEE @ berlin-01",
        before={"on_hand": 5, "reserved": 0, "version": 3},
        after={"on_hand": 4, "reserved": 0, "version": 4},
    )
    audit_relay_pending()
    event = AuditEvent.objects.get()

    [body] = results(api_client(staff).get(URL))

    assert set(body) == FIELDS
    recorded_at = body.pop("recorded_at")
    assert datetime.fromisoformat(recorded_at) == event.recorded_at
    assert body == {
        "sequence": 1,
        "occurred_at": "2025-01-02T10:30:00Z",
        "actor": "staffer",
        "ip": "203.0.113.9",
        "request_id": "abc-123",
        "action": "stock.sale",
        "store": "berlin-01",
        "object_type": "stock.movement",
        "object_id": "7",
        "object_repr": "TEE @ berlin-01",
        "before": {"on_hand": 5, "reserved": 0, "version": 3},
        "after": {"on_hand": 4, "reserved": 0, "version": 4},
        "previous_hash": "0" * 64,
        "hash": event.hash,
    }


def test_events_chain_their_hashes_in_the_listing(history, staff):
    events = results(api_client(staff).get(URL))

    for newer, older in zip(events, events[1:], strict=False):
        assert newer["previous_hash"] == older["hash"]
    assert events[-1]["previous_hash"] == "0" * 64
    assert events[0]["hash"] == AuditChainHead.objects.get().hash


@pytest.mark.parametrize(
    "query, sequences",
    [
        ("?store=berlin-01", [5, 1]),
        ("?store=hamburg-01", [6, 2]),
        ("?store=nowhere-99", []),
        ("?action=stock.receive", [6, 2, 1]),
        ("?action=stock.", [6, 5, 2, 1]),
        ("?action=auth.", [4]),
        ("?action=stock", []),
        ("?action=stock.rec", []),
        ("?actor=berlin-manager", [5, 1]),
        ("?actor=staffer", [3]),
        ("?actor=Berlin-Manager", []),
        ("?store=berlin-01&action=stock.receive", [1]),
        ("?store=hamburg-01&actor=berlin-manager", []),
        ("?action=product.&actor=staffer", [3]),
    ],
)
def test_the_log_filters(history, staff, query, sequences):
    response = api_client(staff).get(f"{URL}{query}")

    assert [event["sequence"] for event in results(response)] == sequences


@pytest.fixture
def dated(berlin):
    """Three events a day apart: 1 Jan, 2 Jan and 3 Jan 2025, 10:00 UTC."""
    for day in (1, 2, 3):
        outbox_entry(occurred_at=datetime(2025, 1, day, 10, tzinfo=UTC), store_id=berlin.pk)
    audit_relay_pending()


@pytest.mark.parametrize(
    "since, sequences",
    [
        ("2025-01-02T10:00:00Z", [3, 2]),  # at or after
        ("2025-01-02T10:00:00.000001Z", [3]),
        ("2025-01-02T12:00:00+02:00", [3, 2]),  # 10:00 UTC
        ("2025-01-02T09:59:59-00:30", [3]),  # 10:29:59 UTC
        ("2024-12-31T00:00:00Z", [3, 2, 1]),
        ("2025-01-04T00:00:00Z", []),
    ],
)
def test_since_keeps_the_events_at_or_after_a_time(dated, staff, since, sequences):
    response = api_client(staff).get(URL, {"since": since})

    assert [event["sequence"] for event in results(response)] == sequences


@pytest.mark.parametrize(
    "since", ["yesterday", "2025-13-01T00:00:00Z", "2025-01-02T10:00:00+99:00"]
)
def test_an_invalid_since_is_400(dated, staff, since):
    response = api_client(staff).get(URL, {"since": since})

    assert list(assert_error(response, 400, "invalid")["errors"]) == ["since"]


@pytest.mark.parametrize("who", ["manager", "viewer"])
def test_a_member_sees_only_the_events_of_their_store(history, request, who):
    client = api_client(request.getfixturevalue(who))

    response = client.get(URL)

    assert listed(response) == [
        (5, "stock.reorder_point", "berlin-01", "berlin-manager"),
        (1, "stock.receive", "berlin-01", "berlin-manager"),
    ]


@pytest.mark.parametrize(
    "query",
    [
        "?store=hamburg-01",
        "?action=product.create",
        "?action=auth.login_failed",
        "?actor=hamburg-manager",
        "?actor=staffer",
    ],
)
def test_a_member_never_sees_other_stores_nor_store_less_events(history, manager, query):
    response = api_client(manager).get(f"{URL}{query}")

    assert response.json() == {"next": None, "previous": None, "results": []}


def test_a_member_of_two_stores_sees_both(history, manager, hamburg):
    MembershipFactory(user=manager, store=hamburg, role=Role.VIEWER)

    response = api_client(manager).get(URL)

    assert [event["sequence"] for event in results(response)] == [6, 5, 2, 1]


def test_a_user_of_no_store_sees_nothing(history):
    response = api_client(UserFactory(username="nobody")).get(URL)

    assert response.json() == {"next": None, "previous": None, "results": []}


def test_a_former_member_no_longer_sees_the_store(history, viewer):
    viewer.memberships.all().delete()

    response = api_client(viewer).get(URL)

    assert results(response) == []


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_log_is_read_only(history, staff, method):
    head = AuditChainHead.objects.get()
    events = list(AuditEvent.objects.order_by("sequence").values())

    response = getattr(api_client(staff), method)(
        URL, {"action": "forged", "sequence": 1}, format="json"
    )

    assert_error(response, 405, "method_not_allowed")
    assert list(AuditEvent.objects.order_by("sequence").values()) == events
    assert not AuditOutboxEntry.objects.exists()
    assert (AuditChainHead.objects.get().sequence, AuditChainHead.objects.get().hash) == (
        head.sequence,
        head.hash,
    )


def test_pages_are_newest_first_and_capped(berlin, staff):
    AuditOutboxEntry.objects.bulk_create(
        AuditOutboxEntry(
            occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
            action="stock.sale",
            store_id=berlin.pk,
            object_type="stock.movement",
            object_id=str(number),
        )
        for number in range(1, 61)
    )
    audit_relay_pending()
    client = api_client(staff)

    first = client.get(URL)
    second = client.get(first.json()["next"])
    back = client.get(second.json()["previous"])
    largest = client.get(URL, {"page_size": 1000})

    assert [event["sequence"] for event in first.json()["results"]] == list(range(60, 10, -1))
    assert [event["sequence"] for event in second.json()["results"]] == list(range(10, 0, -1))
    assert second.json()["next"] is None
    assert back.json()["results"] == first.json()["results"]
    assert back.json()["previous"] is None
    assert len(largest.json()["results"]) == 60  # clamped at 200, not refused


def test_a_page_size_is_clamped_at_200(berlin, staff):
    seed_events(berlin, 201)
    client = api_client(staff)

    first = client.get(URL, {"page_size": 1000})
    second = client.get(first.json()["next"])

    assert [event["sequence"] for event in first.json()["results"]] == list(range(201, 1, -1))
    assert [event["sequence"] for event in second.json()["results"]] == [1]


@pytest.mark.parametrize(
    "cursor",
    [
        "nonsense!",
        "cD1hYmM=",  # p=abc
        "cD05OTk5OTk5OTk5OTk5OTk5OTk5OQ==",  # p=99999999999999999999, beyond a bigint
        "cj14",  # r=x
        "\u00e9",
    ],
)
def test_a_cursor_not_made_by_the_list_is_400(berlin, staff, cursor):
    seed_events(berlin, 2)

    response = api_client(staff).get(URL, {"cursor": cursor})

    assert list(assert_error(response, 400, "invalid")["errors"]) == ["cursor"]


def seed_events(store, count: int) -> None:
    AuditOutboxEntry.objects.bulk_create(
        AuditOutboxEntry(
            occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
            actor_username="berlin-manager",
            action="stock.sale",
            store_id=store.pk,
            object_type="stock.movement",
            object_id=str(number),
        )
        for number in range(count)
    )
    audit_relay_pending()


# token user, page (store codes are a subquery); no count (cursor pagination). Staff add
# their own and their groups' permissions, a member the ids of their stores.
PAGE_QUERIES = {"staff": 4, "manager": 3}


@pytest.mark.parametrize("who", ["staff", "manager"])
@pytest.mark.parametrize("count", [1, 50])
def test_a_page_costs_the_same_queries_for_1_or_50_events(
    berlin, request, django_assert_num_queries, who, count
):
    client = api_client(request.getfixturevalue(who))
    seed_events(berlin, count)

    with django_assert_num_queries(PAGE_QUERIES[who]):
        response = client.get(URL)

    assert len(results(response)) == count
    assert {event["store"] for event in results(response)} == {"berlin-01"}


# --- Who sees which events, and the address they came from ---------------------------

READERS = [
    "viewer",
    "clerk",
    "manager",
    "manager_and_clerk",
    "staff_without_permissions",
    "staff_with_stock_view",
    "staff_with_stock_change",
    "staff_with_view_permissions",
    "staff_with_audit_view",
    "superuser",
]


@pytest.mark.parametrize("audit_reader", READERS, indirect=True)
def test_each_reader_sees_the_events_and_addresses_of_their_role(store_audit_log, audit_reader):
    response = api_client(audit_reader.user).get(URL)

    events = results(response)
    assert [(event["sequence"], event["ip"] is not None) for event in events] == (audit_reader.sees)
    for event in events:
        assert set(event) == FIELDS
        assert event["ip"] in (None, f"203.0.113.{event['sequence']}")


@pytest.mark.parametrize("audit_reader", ["viewer", "clerk"], indirect=True)
@pytest.mark.parametrize(
    "query",
    ["?action=membership.grant", "?action=membership.", "?action=store.update", "?actor=someone"],
)
def test_a_filter_finds_no_event_a_viewer_or_clerk_may_not_see(
    store_audit_log, audit_reader, query
):
    response = api_client(audit_reader.user).get(f"{URL}{query}")

    assert [event["sequence"] for event in results(response)] == (
        [2, 1] if query == "?actor=someone" else []
    )


@pytest.mark.parametrize("audit_reader", ["manager"], indirect=True)
def test_a_manager_sees_whom_their_store_granted_which_role(store_audit_log, audit_reader):
    response = api_client(audit_reader.user).get(URL, {"action": "membership.grant"})

    [event] = results(response)
    assert (event["store"], event["ip"], event["after"]) == (
        "berlin-01",
        "203.0.113.3",
        {"role": "manager"},
    )
