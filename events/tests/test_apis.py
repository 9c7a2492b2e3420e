"""GET /api/v1/stores/{code}/events/?after=<seq>: a store's event log by cursor."""

from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.settings import api_settings

from events.models import EventType, StockEvent
from inventory_site.api.pagination import MAX_PAGE_SIZE
from stock.services import stock_purchase, stock_receive
from stores.models import Role
from tests.api import api_client, assert_error
from tests.app_role import as_owner
from tests.factories import StaffFactory, StockEventFactory, member

EVENTS = "/api/v1/stores/berlin-01/events/"


def seqs(response) -> list[int]:
    assert response.status_code == 200, response.content[:300]
    return [event["seq"] for event in response.json()["results"]]


def query(response) -> dict[str, list[str]]:
    """The query parameters of the page's ``next`` link."""
    return parse_qs(urlsplit(response.json()["next"]).query)


# --- Who reads it -----------------------------------------------------------------------


def test_without_credentials_it_is_401(berlin):
    assert_error(api_client().get(EVENTS), 401)


def test_a_store_the_user_is_not_a_member_of_answers_as_one_that_does_not_exist(berlin, outsider):
    StockEventFactory(store=berlin)
    client = api_client(outsider)

    hidden = assert_error(client.get(EVENTS), 404)
    missing = assert_error(client.get("/api/v1/stores/nowhere-01/events/"), 404)

    assert hidden == missing


def test_a_viewer_reads_the_store_s_events_with_their_skus(berlin, hamburg, viewer, tee, mug):
    sale = StockEventFactory(
        store=berlin, product=tee, type=EventType.LOW, on_hand=5, reserved=1, reorder_point=4
    )
    sold_out = StockEventFactory(
        store=berlin, product=mug, type=EventType.OUT, on_hand=0, reserved=0
    )
    StockEventFactory(store=hamburg, product=tee)  # another store's log

    response = api_client(viewer).get(EVENTS)

    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {
                "seq": 1, "type": "stock.low", "sku": "TEE", "on_hand": 5, "reserved": 1,
                "available": 4, "reorder_point": 4, "version": sale.version,
                "at": sale.at.isoformat().replace("+00:00", "Z"),
            },
            {
                "seq": 2, "type": "stock.out", "sku": "MUG", "on_hand": 0, "reserved": 0,
                "available": 0, "reorder_point": 5, "version": sold_out.version,
                "at": sold_out.at.isoformat().replace("+00:00", "Z"),
            },
        ],
        "next": None,
    }  # fmt: skip


def test_staff_with_the_stock_view_permission_read_every_store_s_log(berlin, hamburg):
    StockEventFactory(store=berlin)
    StockEventFactory(store=hamburg)
    client = api_client(StaffFactory(permissions=["stock.view_stocklevel"]))

    assert seqs(client.get(EVENTS)) == [1]
    assert seqs(client.get("/api/v1/stores/hamburg-01/events/")) == [1]


def test_staff_without_a_stock_permission_see_no_store(berlin):
    StockEventFactory(store=berlin)

    assert_error(api_client(StaffFactory(permissions=[])).get(EVENTS), 404)


def test_a_reorder_point_changed_through_the_api_is_read_as_an_event(berlin, viewer, tee):
    manager = member("manager", berlin, Role.MANAGER)
    stock_receive(store=berlin, product=tee, quantity=6)
    stock_purchase(store=berlin, product=tee, quantity=2)  # available 4
    level = f"/api/v1/stores/berlin-01/stock/{tee.sku}/"
    client = api_client(manager)

    assert client.patch(level, {"reorder_point": 4}, format="json").status_code == 200
    assert client.patch(level, {"reorder_point": 4}, format="json").status_code == 200  # same
    assert client.patch(level, {"reorder_point": 1}, format="json").status_code == 200

    response = api_client(viewer).get(EVENTS, {"after": 2})
    assert [(event["seq"], event["type"], event["available"], event["reorder_point"],
             event["version"]) for event in response.json()["results"]] == [
        (3, "stock.low", 4, 4, 2),
        (4, "stock.changed", 4, 1, 2),
    ]  # fmt: skip


# --- The cursor -------------------------------------------------------------------------


def test_after_gives_the_events_numbered_above_it_in_order(berlin, viewer):
    for seq in (3, 1, 5, 2, 4):  # written out of order
        StockEventFactory(store=berlin, seq=seq)
    client = api_client(viewer)

    assert seqs(client.get(EVENTS)) == [1, 2, 3, 4, 5]
    assert seqs(client.get(EVENTS, {"after": 0})) == [1, 2, 3, 4, 5]
    assert seqs(client.get(EVENTS, {"after": 3})) == [4, 5]
    assert seqs(client.get(EVENTS, {"after": 5})) == []
    assert seqs(client.get(EVENTS, {"after": 2**63 - 1})) == []


def test_a_pruned_start_of_the_log_is_skipped_without_a_gap_after_it(berlin, viewer):
    StockEventFactory.log(berlin, 4)
    with as_owner():  # who prunes
        StockEvent.objects.filter(store=berlin, seq__lte=2).delete()

    assert seqs(api_client(viewer).get(EVENTS, {"after": 1})) == [3, 4]


def test_paging_by_next_reads_a_long_log_once_in_order(berlin, viewer):
    total = 2 * MAX_PAGE_SIZE + 50
    StockEventFactory.log(berlin, total)
    client = api_client(viewer)

    pages = [client.get(EVENTS, {"page_size": 10_000})]
    while pages[-1].json()["next"]:
        pages.append(client.get(pages[-1].json()["next"]))

    assert [len(page.json()["results"]) for page in pages] == [MAX_PAGE_SIZE, MAX_PAGE_SIZE, 50]
    assert [seq for page in pages for seq in seqs(page)] == list(range(1, total + 1))
    first_next = pages[0].json()["next"]
    assert first_next.startswith("http://testserver/api/v1/stores/berlin-01/events/?")
    assert query(pages[0]) == {"page_size": ["10000"], "after": [str(MAX_PAGE_SIZE)]}
    assert query(pages[1]) == {"page_size": ["10000"], "after": [str(2 * MAX_PAGE_SIZE)]}


def test_next_is_null_when_the_page_holds_the_last_event(berlin, viewer):
    StockEventFactory.log(berlin, 6)
    client = api_client(viewer)

    full = client.get(EVENTS, {"page_size": 3})
    exact = client.get(EVENTS, {"page_size": 3, "after": 3})

    assert (seqs(full), query(full)) == ([1, 2, 3], {"page_size": ["3"], "after": ["3"]})
    assert (seqs(exact), exact.json()["next"]) == ([4, 5, 6], None)


def test_new_events_appear_after_the_cursor_a_client_kept(berlin, viewer):
    StockEventFactory.log(berlin, 2)
    client = api_client(viewer)
    last = seqs(client.get(EVENTS))[-1]

    StockEventFactory.log(berlin, 2)

    assert seqs(client.get(EVENTS, {"after": last})) == [3, 4]


@pytest.mark.parametrize("page_size", ["0", "-5", "ten", "1.5", ""])
def test_a_page_size_that_is_no_positive_number_is_the_default(berlin, viewer, page_size):
    StockEventFactory.log(berlin, api_settings.PAGE_SIZE + 1)

    response = api_client(viewer).get(EVENTS, {"page_size": page_size})

    assert seqs(response) == list(range(1, api_settings.PAGE_SIZE + 1))


@pytest.mark.parametrize(
    "after",
    ["-1", "abc", "1.5", "", "+1", " 1", "1e3", "0x10", str(2**63), "9" * 40, "\x00", "1\x00",
     "٣"],  # the last: an Arabic-Indic three, a digit to Python's int()
)  # fmt: skip
def test_an_after_that_is_no_event_number_is_400_naming_it(berlin, viewer, after):
    StockEventFactory(store=berlin)

    body = assert_error(api_client(viewer).get(EVENTS, {"after": after}), 400, "invalid")

    assert list(body["errors"]) == ["after"]


def test_a_parameter_the_list_does_not_take_is_400(berlin, viewer):
    body = assert_error(api_client(viewer).get(EVENTS, {"afterr": "1"}), 400)

    assert body["errors"] == {
        "afterr": [
            "Unknown parameter; this list's filters are: none (and after, format, page_size)."
        ]
    }


# --- What a page costs ------------------------------------------------------------------


def test_a_page_costs_the_same_queries_at_one_event_as_at_a_full_page(berlin, viewer, tee, mug):
    client = api_client(viewer)
    client.get(EVENTS)  # the token, store and role now in the lookup cache
    StockEventFactory(store=berlin, product=tee)
    with CaptureQueriesContext(connection) as one:
        assert len(seqs(client.get(EVENTS))) == 1

    for product in (tee, mug):
        StockEventFactory.log(berlin, MAX_PAGE_SIZE, product=product)
    with CaptureQueriesContext(connection) as many:
        assert len(seqs(client.get(EVENTS, {"page_size": MAX_PAGE_SIZE}))) == MAX_PAGE_SIZE

    # The page, with its SKUs joined: nothing per event, nothing to count.
    assert len(one) == len(many) == 1, [query["sql"] for query in many]


def test_the_schema_documents_the_cursor_and_the_page_without_a_count(client, db):
    schema = yaml.safe_load(client.get("/api/v1/schema/").content)

    operation = schema["paths"]["/api/v1/stores/{code}/events/"]["get"]
    page = operation["responses"]["200"]["content"]["application/json"]["schema"]
    page = schema["components"]["schemas"][page["$ref"].rsplit("/", 1)[1]]
    assert {parameter["name"] for parameter in operation["parameters"]} == {
        "code", "after", "page_size"
    }  # fmt: skip
    assert set(page["properties"]) == {"results", "next"}
    assert set(operation["responses"]) >= {"200", "400", "401", "404"}
    assert schema["components"]["schemas"]["StockEventTypeEnum"]["enum"] == EventType.values
