"""The stock event log in the admin: read-only, store-scoped, by type and by SKU."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from events.models import EventType, StockEvent
from tests.factories import StockEventFactory

LIST = "/admin/events/stockevent/"


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def listed(response) -> list[tuple[str, int]]:
    assert response.status_code == 200
    return [(event.store.code, event.seq) for event in response.context["cl"].result_list]


@pytest.fixture
def events(berlin, hamburg, tee, mug):
    StockEventFactory(store=berlin, product=tee)
    StockEventFactory(store=berlin, product=mug, type=EventType.OUT)
    StockEventFactory(store=berlin, product=tee, type=EventType.LOW)
    StockEventFactory(store=hamburg, product=tee)


def test_a_member_sees_their_stores_events_newest_first(events, viewer):
    newest_first = [("berlin-01", 3), ("berlin-01", 2), ("berlin-01", 1)]

    assert listed(browser(viewer).get(LIST)) == newest_first


def test_staff_see_every_store_s_and_narrow_it_to_one(events, staff):
    client = browser(staff)

    every = listed(client.get(LIST))
    berlin_only = listed(client.get(LIST, {"store": "berlin-01"}))

    assert every == [("hamburg-01", 1), ("berlin-01", 3), ("berlin-01", 2), ("berlin-01", 1)]
    assert berlin_only == [("berlin-01", 3), ("berlin-01", 2), ("berlin-01", 1)]


def test_the_list_filters_by_type_and_searches_an_exact_sku(events, viewer):
    client = browser(viewer)

    assert listed(client.get(LIST, {"type__exact": "stock.out"})) == [("berlin-01", 2)]
    assert listed(client.get(LIST, {"q": "TEE"})) == [("berlin-01", 3), ("berlin-01", 1)]
    assert listed(client.get(LIST, {"q": " MUG "})) == [("berlin-01", 2)]
    assert listed(client.get(LIST, {"q": "TE"})) == []


def test_nobody_adds_changes_or_deletes_an_event_here(events, staff):
    client = browser(staff)
    event = StockEvent.objects.get(store__code="berlin-01", seq=1)
    page = f"{LIST}{event.pk}/change/"

    shown = client.get(page)
    posted = client.post(page, {"on_hand": 999})

    assert shown.status_code == 200
    assert b"TEE" in shown.content and b"berlin-01" in shown.content
    assert posted.status_code == 403
    assert client.get(f"{LIST}add/").status_code == 403
    assert client.post(f"{LIST}{event.pk}/delete/").status_code == 403
    assert StockEvent.objects.get(pk=event.pk).on_hand == event.on_hand


def test_an_outsider_sees_none_of_another_store_s_events(events, outsider):
    client = browser(outsider)
    berlin_event = StockEvent.objects.get(store__code="berlin-01", seq=1)

    assert listed(client.get(LIST)) == [("hamburg-01", 1)]
    assert client.get(f"{LIST}{berlin_event.pk}/change/").status_code == 302  # "not found"


def test_the_list_costs_the_same_queries_at_one_event_as_at_a_full_page(berlin, viewer, tee):
    client = browser(viewer)
    StockEventFactory(store=berlin, product=tee)
    client.get(LIST)  # the process-wide caches warm
    with CaptureQueriesContext(connection) as one:
        assert len(listed(client.get(LIST))) == 1

    StockEventFactory.log(berlin, 99)
    with CaptureQueriesContext(connection) as full:
        assert len(listed(client.get(LIST))) == 100

    assert len(one) == len(full), [query["sql"] for query in full]
