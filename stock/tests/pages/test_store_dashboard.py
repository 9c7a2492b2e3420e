"""GET /stores/<code>/: the store dashboard, as the server renders it (the browser test,
tests/browser/test_store_dashboard_in_chromium.py, watches it change live)."""

import json
import re

import pytest
from django.db import connection
from django.db.models import Max
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog.models import Product
from events import channels
from events.models import StockEvent, StoreEventSequence
from stock.dashboard import LATEST_MOVEMENTS, LEVELS_PER_PAGE, LevelFilter, dashboard_snapshot
from stock.services import stock_adjust, stock_purchase, stock_receive, stock_set_reorder_point
from tests.factories import ProductFactory

from .helpers import browser

URL = "/stores/berlin-01/"


def stocked(store, sku, *, on_hand, reorder_point, name=None, actor=None):
    product = ProductFactory(sku=sku, **({"name": name} if name else {}))
    stock_receive(store=store, product=product, quantity=on_hand + 1, actor=actor)
    stock_adjust(store=store, product=product, delta=-1, reason="damaged", actor=actor)
    stock_set_reorder_point(store=store, product=product, reorder_point=reorder_point)
    return product


@pytest.fixture
def shelves(berlin, hamburg, manager):
    """berlin-01: one level out of stock, one low, one healthy; hamburg-01: one out."""
    stocked(berlin, "TEE-OUT", on_hand=0, reorder_point=3, name="Red tee", actor=manager)
    stocked(berlin, "MUG-LOW", on_hand=2, reorder_point=5, name="Blue mug")
    stocked(berlin, "CAP-OK", on_hand=10, reorder_point=3, name="Black cap")
    stocked(hamburg, "FAR-AWAY", on_hand=0, reorder_point=50)


def level_rows(text: str) -> dict[str, dict]:
    """{sku: its cells by class} from the levels table."""
    table = re.search(r'<table id="levels">(.*?)</table>', text, re.S)[1]
    rows = {}
    for sku, row in re.findall(r'<tr data-sku="([^"]+)"[^>]*>(.*?)</tr>', table, re.S):
        cells = dict(re.findall(r'<t[hd][^>]*class="([\w-]+)">(.*?)</t[hd]>', row, re.S))
        rows[sku] = {name: re.sub(r"<[^>]+>", "", value).strip() for name, value in cells.items()}
    return rows


def counts(text: str) -> dict[str, int]:
    return {
        name: int(re.search(rf'<strong id="count-{name}">(\d+)</strong>', text)[1])
        for name in ("low", "out", "changes-today")
    }


def live_config(text: str) -> dict:
    found = re.search(r'<script id="dashboard-config" type="application/json">(.*?)</script>', text)
    return json.loads(found[1])


# --- Who may see it -----------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login(berlin):
    response = Client().get(URL)

    assert (response.status_code, response["Location"]) == (
        302,
        "/admin/login/?next=/stores/berlin-01/",
    )


@pytest.mark.parametrize("role", ["viewer", "clerk", "manager", "staff_with_view_permissions"])
def test_anyone_who_may_see_the_store_sees_its_dashboard(request, shelves, role):
    response = browser(request.getfixturevalue(role)).get(URL)

    assert response.status_code == 200
    assert set(level_rows(response.text)) == {"TEE-OUT", "MUG-LOW", "CAP-OK"}


@pytest.mark.parametrize("role", ["hamburg_manager", "outsider", "staff_without_permissions"])
def test_a_store_the_user_is_not_a_member_of_is_not_found(request, shelves, role):
    user = request.getfixturevalue(role)

    assert browser(user).get(URL).status_code == 404
    assert browser(user).get(URL + "summary/").status_code == 404


def test_an_unknown_store_is_not_found(viewer):
    assert browser(viewer).get("/stores/nowhere-01/").status_code == 404


# --- What it shows ------------------------------------------------------------------


def test_levels_carry_their_numbers_and_an_out_or_low_badge(viewer, shelves):
    response = browser(viewer).get(URL)

    assert level_rows(response.text) == {
        "CAP-OK": {
            "sku": "CAP-OK", "name": "Black cap", "available": "10", "on-hand": "10",
            "reserved": "0", "reorder-point": "3", "status": "",
        },
        "MUG-LOW": {
            "sku": "MUG-LOW", "name": "Blue mug", "available": "2", "on-hand": "2",
            "reserved": "0", "reorder-point": "5", "status": "LOW",
        },
        "TEE-OUT": {
            "sku": "TEE-OUT", "name": "Red tee", "available": "0", "on-hand": "0",
            "reserved": "0", "reorder-point": "3", "status": "OUT",
        },
    }  # fmt: skip
    assert '<span class="badge badge-out">OUT</span>' in response.text
    assert '<span class="badge badge-low">LOW</span>' in response.text


def test_the_header_counts_low_out_and_todays_changes_of_this_store_only(viewer, shelves):
    response = browser(viewer).get(URL)

    # Two changes per level (a receive, an adjust) in berlin-01; hamburg's not counted.
    assert counts(response.text) == {"low": 2, "out": 1, "changes-today": 6}


def test_a_sale_moves_the_counts(viewer, berlin, shelves):
    stock_purchase(
        store=berlin, product=ProductFactory._meta.model.objects.get(sku="MUG-LOW"), quantity=2
    )

    response = browser(viewer).get(URL)

    assert counts(response.text) == {"low": 2, "out": 2, "changes-today": 7}
    assert level_rows(response.text)["MUG-LOW"]["status"] == "OUT"


@pytest.mark.parametrize(
    ("query", "listed"),
    [
        ("?q=mug", ["MUG-LOW"]),  # the name
        ("?q=tee-", ["TEE-OUT"]),  # the SKU, in any case
        ("?low=1", ["MUG-LOW", "TEE-OUT"]),
        ("?q=cap&low=1", []),
        ("?q=", ["CAP-OK", "MUG-LOW", "TEE-OUT"]),
    ],
)
def test_levels_are_filtered_and_searched_by_the_database(viewer, shelves, query, listed):
    response = browser(viewer).get(URL + query)

    assert list(level_rows(response.text)) == listed
    # The counts are the store's, whatever the rows show.
    assert counts(response.text) == {"low": 2, "out": 1, "changes-today": 6}
    assert live_config(response.text)["shows_every_level"] is (query in {"", "?q="})


def test_a_filter_that_matches_nothing_says_so(viewer, shelves):
    response = browser(viewer).get(URL + "?q=nothing-like-it")

    assert "No level matches." in response.text
    assert 'href="/stores/berlin-01/">Show every level</a>' in response.text


def test_the_latest_movements_say_who_and_why(viewer, manager, shelves):
    response = browser(viewer).get(URL)

    table = re.search(r'<table id="movements">(.*?)</table>', response.text, re.S)[1]
    rows = re.findall(r'<tr data-movement="\d+">(.*?)</tr>', table, re.S)
    cells = [dict(re.findall(r'<td class="(\w+)">(.*?)</td>', row, re.S)) for row in rows]
    assert [(row["sku"], row["kind"], row["who"], row["why"]) for row in cells] == [
        ("CAP-OK", "Adjust", "&mdash;", "damaged"),
        ("CAP-OK", "Receive", "&mdash;", ""),
        ("MUG-LOW", "Adjust", "&mdash;", "damaged"),
        ("MUG-LOW", "Receive", "&mdash;", ""),
        ("TEE-OUT", "Adjust", "manager", "damaged"),
        ("TEE-OUT", "Receive", "manager", ""),
    ]
    assert cells[0]["change"] == "on hand -1 → 10"


def test_the_live_movements_fill_up_to_the_latest_ones_a_page_shows(viewer, berlin, shelves):
    """The script reads the movements again from the URL the page gives it: a page that
    loaded with 6 movements still shows the newest LATEST_MOVEMENTS once there are more."""
    config = live_config(browser(viewer).get(URL).text)
    cap = Product.objects.get(sku="CAP-OK")
    for _ in range(LATEST_MOVEMENTS):
        stock_receive(store=berlin, product=cap, quantity=1)

    page = browser(viewer).get(config["movements_url"]).json()

    assert len(page["results"]) == LATEST_MOVEMENTS


@pytest.fixture
def redis_mode(monkeypatch):
    """The page as the services mode renders it, where a stream can be served (the
    cache is a Redis), in either mode of the test run."""
    monkeypatch.setattr(channels, "uses_redis", lambda: True)


def test_the_page_embeds_the_event_seq_it_shows_and_where_events_come_from(
    viewer, berlin, shelves, settings, redis_mode
):
    settings.EVENTS_STREAM_URL = "https://events.example/"
    StoreEventSequence.objects.update_or_create(store=berlin, defaults={"last_seq": 41})

    config = live_config(browser(viewer).get(URL).text)

    assert config["seq"] == 41
    assert config["stream_url"] == "https://events.example/api/v1/stores/berlin-01/events/stream/"
    assert config["events_url"] == "/api/v1/stores/berlin-01/events/"
    assert config["summary_url"] == "/stores/berlin-01/summary/"
    assert config["counts"] == {"low": 2, "out": 1, "changes_today": 6}
    assert config["shows_every_level"] is True


def test_the_stream_is_on_the_sites_own_origin_by_default(viewer, berlin, shelves, redis_mode):
    config = live_config(browser(viewer).get(URL).text)

    assert config["stream_url"] == "/api/v1/stores/berlin-01/events/stream/"
    # The store's last event (none before the event log writer is there).
    last = StockEvent.objects.filter(store=berlin).aggregate(last=Max("seq"))["last"]
    assert config["seq"] == (last or 0)


def test_without_redis_the_page_polls_and_asks_for_no_stream(viewer, shelves, monkeypatch):
    """The embedded mode serves no stream: asking would cost a refused request (and an
    error in the log) on every load and every minute after."""
    monkeypatch.setattr(channels, "uses_redis", lambda: False)

    config = live_config(browser(viewer).get(URL).text)

    assert config["stream_url"] is None
    assert config["events_url"] == "/api/v1/stores/berlin-01/events/"


def test_the_summary_is_the_headers_counts_with_their_seq(viewer, berlin, shelves):
    StoreEventSequence.objects.update_or_create(store=berlin, defaults={"last_seq": 7})

    summary = browser(viewer).get(URL + "summary/").json()

    assert {key: summary[key] for key in ("seq", "low", "out", "changes_today")} == {
        "seq": 7, "low": 2, "out": 1, "changes_today": 6,
    }  # fmt: skip
    assert summary["day_start"] < summary["day_end"]


def test_data_is_escaped_in_the_rows_and_in_the_embedded_config(viewer, berlin):
    stocked(berlin, "XSS-1", on_hand=1, reorder_point=0, name="<script>alert(1)</script>")

    response = browser(viewer).get(URL)

    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


# --- Large stores -------------------------------------------------------------------


def test_a_store_of_many_levels_is_shown_a_page_at_a_time(viewer, berlin):
    for number in range(LEVELS_PER_PAGE + 3):
        stock_receive(store=berlin, product=ProductFactory(sku=f"BULK-{number:04d}"), quantity=1)
    client = browser(viewer)

    first, second = client.get(URL), client.get(URL + "?page=2")

    assert len(level_rows(first.text)) == LEVELS_PER_PAGE
    assert list(level_rows(second.text)) == [
        f"BULK-{n:04d}" for n in range(LEVELS_PER_PAGE, LEVELS_PER_PAGE + 3)
    ]
    assert 'href="?page=2">next' in first.text
    assert live_config(first.text)["shows_every_level"] is False
    table = re.search(r'<table id="movements">(.*?)</table>', first.text, re.S)[1]
    assert len(re.findall(r"<tr data-movement=", table)) == LATEST_MOVEMENTS


def queries_of(client) -> int:
    client.get(URL)  # the session and lookup caches warm, as for a returning user
    with CaptureQueriesContext(connection) as captured:
        assert client.get(URL).status_code == 200
    return len(captured)


def test_the_page_costs_the_same_queries_for_few_levels_or_many(viewer, berlin, manager):
    """No query per row or per movement: the levels with their products, the movements
    with their products and actors, one aggregate for the counts."""
    stocked(berlin, "FIRST", on_hand=1, reorder_point=2, actor=manager)
    client = browser(viewer)
    few = queries_of(client)
    for number in range(30):
        stocked(berlin, f"MORE-{number:02d}", on_hand=number, reorder_point=5, actor=manager)

    assert queries_of(client) == few


def test_the_snapshot_reads_six_times_whatever_the_store_holds(berlin, manager):
    """The seq, the page's count and rows, the counts, today's changes, the movements."""
    for number in range(30):
        stocked(berlin, f"MORE-{number:02d}", on_hand=number, reorder_point=5, actor=manager)

    with CaptureQueriesContext(connection) as captured:
        snapshot = dashboard_snapshot(berlin, LevelFilter())
        [(level.product.sku, level.store.code) for level in snapshot.levels]
        [(movement.product.sku, movement.actor.username) for movement in snapshot.movements]

    reads = [query["sql"] for query in captured if query["sql"].startswith("SELECT")]
    assert len(reads) == 6, reads
