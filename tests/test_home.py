"""The site's home page at /: where a newcomer starts, and where a member finds their
stores' stock and low-stock pages."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from stores.models import Role
from tests.factories import MembershipFactory, StaffFactory, StoreFactory, UserFactory, member

STORE_LINK = re.compile(r'<a href="([^"]+)"[^>]*>')


def links(html: str) -> list[str]:
    return STORE_LINK.findall(html)


def site_links(html: str) -> str:
    return re.search(r'<ul id="site-links">(.*?)</ul>', html, re.S)[1]


def store_rows(html: str) -> dict[str, list[str]]:
    """{store code: the links of its row} from the stores table."""
    table = re.search(r'<table id="stores">(.*?)</table>', html, re.S)
    assert table, html
    rows = re.findall(r'<tr data-store="([^"]+)">(.*?)</tr>', table[1], re.S)
    return {code: links(row) for code, row in rows}


def store_links(code: str, *, manages: bool) -> list[str]:
    expected = [
        f"/stores/{code}/",
        f"/admin/stock/stocklevel/?store={code}",
        f"/api/v1/stores/{code}/stock/",
    ]
    return expected + [f"/stores/{code}/low-stock/"] if manages else expected


@pytest.mark.django_db
def test_an_anonymous_visitor_gets_a_welcome_with_the_login_and_the_api(client):
    StoreFactory(code="berlin-01")

    response = client.get("/")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "<title>Inventory</title>" in response.text
    assert '<div id="site-name"><a href="/admin/">Inventory</a></div>' in response.text
    assert re.findall(r"<h1>(.*?)</h1>", response.text) == ["Inventory"]
    assert links(site_links(response.text)) == [
        "/admin/login/?next=/",
        "/api/v1/",
        "/api/v1/docs/",
    ]
    assert "berlin-01" not in response.text


@pytest.mark.django_db
def test_a_member_sees_their_stores_and_the_low_stock_page_of_those_they_manage(client):
    berlin, hamburg = StoreFactory(code="berlin-01"), StoreFactory(code="hamburg-01")
    StoreFactory(code="munich-01")
    StoreFactory(code="aachen-01")
    alice = member("alice", berlin, Role.CLERK)
    MembershipFactory(user=alice, store=hamburg, role=Role.MANAGER)
    member("bob", StoreFactory(code="cologne-01"), Role.MANAGER)
    client.force_login(alice)

    response = client.get("/")

    assert response.status_code == 200
    assert store_rows(response.text) == {
        "berlin-01": store_links("berlin-01", manages=False),
        "hamburg-01": store_links("hamburg-01", manages=True),
    }
    assert re.findall(r"<h1>(.*?)</h1>", response.text) == ["Welcome, alice"]
    assert re.search(r'<tr data-store="berlin-01">.*?<td>clerk</td>', response.text, re.S)
    assert re.search(r'<tr data-store="hamburg-01">.*?<td>manager</td>', response.text, re.S)
    assert links(site_links(response.text)) == ["/admin/", "/api/v1/", "/api/v1/docs/"]
    assert "/admin/login/" not in response.text


@pytest.mark.django_db
def test_staff_with_stock_permissions_see_every_store_and_manage_it(client):
    for code in ["hamburg-01", "berlin-01"]:
        StoreFactory(code=code)
    client.force_login(StaffFactory())

    response = client.get("/")

    assert store_rows(response.text) == {
        "berlin-01": store_links("berlin-01", manages=True),
        "hamburg-01": store_links("hamburg-01", manages=True),
    }


@pytest.mark.django_db
def test_a_user_without_stores_is_told_so_and_offered_the_api(client):
    StoreFactory(code="berlin-01")
    client.force_login(UserFactory(username="bob"))

    response = client.get("/")

    assert response.status_code == 200
    assert "You hold no role in any store yet" in response.text
    assert 'id="stores"' not in response.text
    assert links(site_links(response.text)) == ["/api/v1/", "/api/v1/docs/"]
    assert 'action="/api/v1/auth/logout/"' in response.text
    assert '<input type="hidden" name="next" value="/">' in response.text
    logout = client.post("/api/v1/auth/logout/", {"next": "/"})
    assert (logout.status_code, logout["Location"]) == (302, "/")
    assert "Log in" in client.get("/").text


@pytest.mark.django_db
def test_the_page_costs_the_same_queries_for_two_stores_or_many(client):
    staff = StaffFactory()
    StoreFactory.create_batch(2)
    client.force_login(staff)
    with CaptureQueriesContext(connection) as two:
        client.get("/")
    StoreFactory.create_batch(8)

    with CaptureQueriesContext(connection) as ten:
        response = client.get("/")

    assert len(store_rows(response.text)) == 10
    assert len(ten) == len(two)


@pytest.mark.django_db
def test_past_fifty_stores_the_page_says_how_many_more_there_are(client):
    StoreFactory.create_batch(53)
    client.force_login(StaffFactory())

    response = client.get("/")

    assert len(store_rows(response.text)) == 50
    assert "and 3 more stores" in response.text


@pytest.mark.django_db
def test_the_admins_view_site_link_opens_the_home_page(client):
    client.force_login(StaffFactory())

    admin_index = client.get("/admin/")

    assert '<a href="/">View site</a>' in admin_index.text
    assert client.get("/").status_code == 200
