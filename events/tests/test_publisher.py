"""The publisher puts each commit's events on their stores' Redis channels in one round
trip, as the stream reads them; without Redis, or with Redis down, the change goes on."""

import json
import uuid

import pytest
from django.test import override_settings
from django_redis import get_redis_connection

from events.channels import store_channel
from events.models import StockEvent
from stock.services import stock_receive
from tests.factories import ProductFactory, StockEventFactory, StoreFactory
from tests.processes import free_port, redis_cache

from .conftest import commit_events
from .stream.conftest import NEEDS_REDIS


@pytest.fixture
def stores(db):
    return StoreFactory(code="berlin-01"), StoreFactory(code="hamburg-01")


@NEEDS_REDIS
@pytest.mark.django_db(transaction=True)
def test_a_commits_events_go_to_their_stores_channels_in_one_round_trip(
    stores, redis_round_trips, settings
):
    settings.CACHE_KEY_PREFIX = f"publisher-test-{uuid.uuid4().hex}"
    berlin, hamburg = stores
    product = ProductFactory(sku="TEE")
    listener = get_redis_connection("default").pubsub(ignore_subscribe_messages=True)
    listener.subscribe(store_channel(berlin.pk), store_channel(hamburg.pk))
    listener.get_message(timeout=1), listener.get_message(timeout=1)  # the confirmations

    get_redis_connection("default").ping()  # the pool's connection is made: no handshake

    berlin_events = [StockEventFactory(store=berlin, product=product) for _ in range(2)]
    hamburg_event = StockEventFactory(store=hamburg, product=product)

    with redis_round_trips() as round_trips:
        commit_events(*berlin_events)
    commit_events(hamburg_event)

    heard = [listener.get_message(timeout=2) for _ in range(3)]
    listener.close()
    assert len(round_trips) == 1, round_trips.commands()
    assert [(m["channel"].decode(), json.loads(m["data"])["seq"]) for m in heard] == [
        (store_channel(berlin.pk), 1),
        (store_channel(berlin.pk), 2),
        (store_channel(hamburg.pk), 1),
    ]
    assert json.loads(heard[0]["data"])["sku"] == "TEE"


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_the_commit_goes_on_and_the_events_stay_in_the_log(stores, caplog):
    berlin, _ = stores
    product = ProductFactory()
    dead = redis_cache(free_port())
    with override_settings(CACHES=dead):
        for _ in range(2):
            stock_receive(store=berlin, product=product, quantity=1)

    assert list(StockEvent.objects.filter(store=berlin).values_list("seq", "on_hand")) == [
        (1, 1),
        (2, 2),
    ]
    assert "Live stream publishing: the cache is unreachable" in caplog.text
