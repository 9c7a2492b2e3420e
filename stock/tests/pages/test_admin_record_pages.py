"""A movement's and a reservation's pages name their fields in words and their store,
product and people as text: links would lead members to the staff's catalog, store and
user pages, which answer them 403."""

import re

import pytest

from stock.models import Movement
from stock.services import StockLine, reservation_create, reservation_release, stock_adjust

from .helpers import browser

STAFF_PAGES = ("/admin/catalog/", "/admin/stores/", "/admin/accounts/")


def labels_of(response) -> list[str]:
    return re.findall(r"<label>([^<]*):</label>", response.text)


def readonly_values(response) -> list[str]:
    return [
        value.strip()
        for value in re.findall(r'<div class="readonly">(.*?)</div>', response.text, re.DOTALL)
    ]


@pytest.fixture
def adjustment(level, berlin, tee, manager):
    stock_adjust(
        store=berlin, product=tee, delta=-2, reason="damaged", note="dropped", actor=manager
    )
    return Movement.objects.get(store=berlin, product=tee, kind="adjust")


@pytest.fixture
def released_hold(level, berlin, tee, manager, clerk):
    hold = reservation_create(
        store=berlin, lines=[StockLine(tee, 3)], reference="cart-7", actor=clerk
    )
    return reservation_release(reservation=hold, actor=manager)


@pytest.mark.parametrize("role", ["manager", "clerk", "viewer"])
def test_a_movements_page_reads_in_words_without_links_to_staff_pages(request, adjustment, role):
    response = browser(request.getfixturevalue(role)).get(
        f"/admin/stock/movement/{adjustment.pk}/change/"
    )

    assert response.status_code == 200
    assert labels_of(response) == [
        "When", "Store", "Product", "Kind", "Change", "Reason", "Reference", "Note", "Actor",
    ]  # fmt: skip
    values = readonly_values(response)
    assert values[1:5] == [
        "berlin-01 (Berlin)",
        "TEE-RED-M (Red T-shirt)",
        "Adjust",
        "on hand -2 → 8",
    ]
    assert values[5:] == ["damaged", "-", "dropped", "manager"]
    for page in STAFF_PAGES:
        assert page not in response.text


def test_staff_see_a_movements_version_too(staff, adjustment):
    response = browser(staff).get(f"/admin/stock/movement/{adjustment.pk}/change/")

    assert labels_of(response)[-1] == "Version"
    assert readonly_values(response)[-1] == "2"


@pytest.mark.parametrize("role", ["manager", "clerk", "viewer"])
def test_a_reservations_page_reads_in_words_without_links_to_staff_pages(
    request, released_hold, role
):
    response = browser(request.getfixturevalue(role)).get(
        f"/admin/stock/reservation/{released_hold.pk}/change/"
    )

    assert response.status_code == 200
    assert labels_of(response) == [
        "ID", "Store", "Status", "Reference", "Created at", "Created by", "Expires at",
        "Closed at", "Closed by", "Closed via",
    ]  # fmt: skip
    values = readonly_values(response)
    assert values[1:4] == ["berlin-01 (Berlin)", "Released", "cart-7"]
    assert values[5] == "clerk"
    assert values[8:] == ["manager", "release"]
    assert "TEE-RED-M (Red T-shirt)" in response.text
    for page in STAFF_PAGES:
        assert page not in response.text
