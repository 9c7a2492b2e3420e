"""The store filter of the store-scoped lists: links to a member's few stores, a search
box for staff (every store) and for a member of many, asking /admin/stores/store/search/
for the stores the user sees."""

import re

import pytest
from django.test import Client

from stores.models import Role
from tests.factories import MembershipFactory, StoreFactory

from .helpers import browser, rows

SEARCH = "/admin/stores/store/search/"
LISTS = [
    "/admin/stock/stocklevel/",
    "/admin/stock/movement/",
    "/admin/stock/reservation/",
    "/admin/audit/auditevent/",
]


def found(response) -> list[str]:
    assert response.status_code == 200, response.content[:300]
    return [result["id"] for result in response.json()["results"]]


def search_box(response) -> str:
    [select] = re.findall(r"<select [^>]*data-store-filter[^>]*>.*?</select>", response.text, re.S)
    return select


@pytest.mark.parametrize(
    "term, codes",
    [
        ("", ["berlin-01", "hamburg-01", "munich-01"]),
        ("ham", ["hamburg-01"]),
        ("MUNICH", ["munich-01"]),  # the name, as well as the code
        ("nowhere", []),
    ],
)
def test_staff_search_every_store_by_code_or_name(staff, berlin, hamburg, munich, term, codes):
    assert found(browser(staff).get(SEARCH, {"term": term})) == codes


def test_a_member_of_a_few_stores_gets_links_and_no_search_scripts(manager, hamburg):
    response = browser(manager).get("/admin/stock/stocklevel/")

    assert "data-store-filter" not in response.text
    assert "stores/store_filter.js" not in response.text
    assert '<a href="?store=berlin-01">berlin-01</a>' in response.text


def test_a_member_finds_only_their_stores(manager, hamburg):
    client = browser(manager)

    assert found(client.get(SEARCH)) == ["berlin-01"]
    assert found(client.get(SEARCH, {"term": "ham"})) == []


def test_a_result_reads_as_code_and_name(staff, berlin):
    response = browser(staff).get(SEARCH, {"term": "berlin"})

    assert response.json() == {
        "results": [{"id": "berlin-01", "text": "berlin-01 (Berlin)"}],
        "pagination": {"more": False},
    }


def test_results_come_20_at_a_time(staff, db):
    for number in range(25):
        StoreFactory(code=f"store-{number:02d}")
    client = browser(staff)

    first = client.get(SEARCH, {"term": "store"})
    second = client.get(SEARCH, {"term": "store", "page": 2})

    assert (len(found(first)), first.json()["pagination"]) == (20, {"more": True})
    assert (found(second), second.json()["pagination"]) == (
        [f"store-{number}" for number in range(20, 25)],
        {"more": False},
    )


def test_staff_who_see_no_store_may_not_search(staff_without_permissions, berlin):
    assert browser(staff_without_permissions).get(SEARCH).status_code == 403


@pytest.mark.parametrize("who", ["anonymous", "outsider"])
def test_who_may_not_use_the_admin_is_sent_to_its_login(request, berlin, who):
    client = Client() if who == "anonymous" else browser(request.getfixturevalue(who))

    response = client.get(SEARCH)

    assert (response.status_code, response["Location"]) == (302, f"/admin/login/?next={SEARCH}")


@pytest.mark.parametrize("url", LISTS)
def test_the_search_box_holds_the_chosen_store_and_keeps_the_other_filters(
    staff, berlin, hamburg, url
):
    response = browser(staff).get(url, {"store": "hamburg-01", "q": "cap"})

    box = search_box(response)
    assert response.status_code == 200
    assert '<option value="hamburg-01" selected>hamburg-01</option>' in box
    assert 'data-query="?q=cap"' in box
    assert f'data-ajax--url="{SEARCH}"' in box


def test_a_member_of_many_stores_searches_them_too(db, berlin):
    """Past 20 stores a member's links would crowd the sidebar as well."""
    regional = MembershipFactory(store=berlin, role=Role.VIEWER).user
    for number in range(20):
        MembershipFactory(user=regional, store=StoreFactory(code=f"store-{number:02d}"))
    StoreFactory(code="store-elsewhere")
    client = browser(regional)

    response = client.get("/admin/stock/stocklevel/")

    assert search_box(response)
    assert found(client.get(SEARCH, {"term": "elsewhere"})) == []
    assert len(found(client.get(SEARCH, {"term": "store"}))) == 20


def test_choosing_a_store_by_its_code_filters_the_list(staff, level, hamburg):
    response = browser(staff).get("/admin/stock/stocklevel/", {"store": "berlin-01"})

    assert rows(response) == [level]
    assert browser(staff).get("/admin/stock/stocklevel/", {"store": "nowhere"}).status_code == 200
