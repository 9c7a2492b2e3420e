"""``low_stock_report`` (what to reorder) and ``warm_cache`` (fill the stock level cache
through the read path's own read-through)."""

import io

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError

from stock.cache import WRITE_MANY_IF_NEWER_SCRIPT, stock_level_cache
from stock.management.commands import warm_cache
from stock.models import Movement, StockLevel
from stock.selectors import stock_level_or_zero
from stock.serializers import StockLevelSerializer
from stock.services import (
    StockLine,
    reservation_create,
    stock_receive,
    stock_set_reorder_point,
)
from stores.models import Role
from tests.api import api_client
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory
from tests.processes import free_port, redis_cache

LOCAL_MEMORY_WARNING = (
    "The cache is local memory: it belongs to this process alone, so the web server will "
    "not see what is filled here (set REDIS_URL).\n"
)


def command(name: str, *args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def levels() -> list[tuple]:
    return list(
        StockLevel.objects.order_by("pk").values_list(
            "on_hand", "reserved", "reorder_point", "version"
        )
    )


# --- low_stock_report -----------------------------------------------------------------


@pytest.fixture
def shelves(store, other_store, product, other_product):
    """berlin-01: TEE-RED-M 10 with 6 reserved, reorder at 4 (available 4: low);
    MUG-BLUE 8, reorder at 3 (not low). hamburg-01: MUG-BLUE 2, reorder at 2 (low);
    a retired CAP out of stock (left out). A closed store's low level (left out)."""
    for model, name in ((product, "T-shirt, red"), (other_product, "Mug, blue")):
        model.name = name
        model.save()
    stock_receive(store=store, product=product, quantity=10)
    reservation_create(store=store, lines=[StockLine(product, 6)])
    stock_set_reorder_point(store=store, product=product, reorder_point=4)
    stock_receive(store=store, product=other_product, quantity=8)
    stock_set_reorder_point(store=store, product=other_product, reorder_point=3)
    stock_receive(store=other_store, product=other_product, quantity=2)
    stock_set_reorder_point(store=other_store, product=other_product, reorder_point=2)
    cap = ProductFactory(sku="CAP", name="Cap", is_active=False)
    stock_set_reorder_point(store=other_store, product=cap, reorder_point=1)
    closed = StoreFactory(code="closed-01", is_active=False)
    stock_set_reorder_point(store=closed, product=product, reorder_point=1)


def test_the_report_lists_levels_at_or_below_their_reorder_point(shelves):
    before = levels()

    out, err = command("low_stock_report")

    assert out.splitlines() == [
        "store       sku        name          available  reorder point",
        "berlin-01   TEE-RED-M  T-shirt, red          4              4",
        "hamburg-01  MUG-BLUE   Mug, blue             2              2",
        "2 stock level(s) at or below the reorder point.",
    ]
    assert err == ""
    assert levels() == before


def test_the_report_of_one_store(shelves):
    out, _ = command("low_stock_report", "--store", "hamburg-01")

    assert out.splitlines() == [
        "store       sku       name       available  reorder point",
        "hamburg-01  MUG-BLUE  Mug, blue          2              2",
        "1 stock level(s) at or below the reorder point.",
    ]


def test_a_closed_store_is_reported_when_named(shelves):
    out, _ = command("low_stock_report", "--store", "closed-01")

    assert out.splitlines()[1:] == [
        "closed-01  TEE-RED-M  T-shirt, red          0              1",
        "1 stock level(s) at or below the reorder point.",
    ]


def test_no_low_stock_says_so_and_succeeds(store, product):
    stock_receive(store=store, product=product, quantity=5)

    assert command("low_stock_report") == ("No stock at or below its reorder point.\n", "")


def test_the_report_refuses_an_unknown_store(db):
    with pytest.raises(CommandError) as failed:
        command("low_stock_report", "--store", "paris-01")

    assert str(failed.value) == "No store with code 'paris-01'."


# --- warm_cache -----------------------------------------------------------------------


@pytest.fixture
def viewer(store, other_store):
    user = UserFactory(username="viewer")
    for place in (store, other_store):
        MembershipFactory(user=user, store=place, role=Role.VIEWER)
    return api_client(user)


@pytest.fixture
def stocked(store, other_store, product, other_product):
    """Three levels. The test's transaction never commits, so no write refreshed the
    cache: it starts empty."""
    stock_receive(store=store, product=product, quantity=7)
    stock_receive(store=store, product=other_product, quantity=3)
    stock_receive(store=other_store, product=product, quantity=2)


def expected_warning() -> str:
    backend = django_settings.CACHES["default"]["BACKEND"]
    return LOCAL_MEMORY_WARNING if backend.endswith("LocMemCache") else ""


def is_cached(store, product) -> bool:
    return stock_level_cache.levels.read(store.pk, product.pk)[1] is not None


def test_warm_cache_fills_what_a_get_then_answers_from_the_cache(
    store, product, other_product, stocked, viewer
):
    assert not is_cached(store, product)
    movements = Movement.objects.count()

    out, err = command("warm_cache")
    response = viewer.get("/api/v1/stores/berlin-01/stock/TEE-RED-M/")

    assert out == "Cached 3 stock level(s): 3 filled, 0 cached already.\n"
    assert err == expected_warning()
    assert (response.status_code, response["X-Cache"]) == (200, "HIT")
    assert response.json() == {
        **StockLevelSerializer(stock_level_or_zero(store, product)).data,
        "source": "cache",
    }
    assert (response.json()["on_hand"], response["ETag"]) == (7, '"1"')
    assert Movement.objects.count() == movements


def test_warm_cache_leaves_cached_levels_alone(stocked):
    command("warm_cache")

    out, _ = command("warm_cache")

    assert out == "Cached 3 stock level(s): 0 filled, 3 cached already.\n"


def test_warm_cache_of_one_store(store, other_store, product, stocked, viewer):
    out, _ = command("warm_cache", "--store", "hamburg-01")

    assert out == "Cached 1 stock level(s): 1 filled, 0 cached already.\n"
    assert viewer.get("/api/v1/stores/hamburg-01/stock/TEE-RED-M/")["X-Cache"] == "HIT"
    assert viewer.get("/api/v1/stores/berlin-01/stock/TEE-RED-M/")["X-Cache"] == "MISS"


def test_warm_cache_refuses_an_unknown_store(db):
    with pytest.raises(CommandError) as failed:
        command("warm_cache", "--store", "paris-01")

    assert str(failed.value) == "No store with code 'paris-01'."


def test_warm_cache_with_the_cache_down_reports_it_and_exits_1(stocked, settings):
    settings.CACHES = redis_cache(free_port())
    before = levels()

    with pytest.raises(CommandError) as failed:
        command("warm_cache")

    assert str(failed.value) == (
        "The stock cache is unreachable; 0 stock level(s) cached before it failed."
    )
    assert failed.value.returncode == 1
    assert levels() == before


def cached_version(store, product) -> int | None:
    body = stock_level_cache.levels.read(store.pk, product.pk)[1]
    return None if body is None else body["version"]


def test_warm_cache_keeps_a_newer_cached_version_and_replaces_an_older_one(
    store, product, other_product, stocked
):
    """The compare-and-set of every fill: a newer version (a change whose refresh came
    after the level was read) stays; an older one gives way to what the database holds."""
    newer = {**StockLevelSerializer(stock_level_or_zero(store, product)).data, "version": 9}
    older = {**StockLevelSerializer(stock_level_or_zero(store, other_product)).data, "version": 0}
    generation = stock_level_cache.levels.read(store.pk, product.pk)[0]
    stock_level_cache.levels.write_if_newer(store.pk, product.pk, newer, generation)
    stock_level_cache.levels.write_if_newer(store.pk, other_product.pk, older, generation)

    out, _ = command("warm_cache")

    assert out == "Cached 3 stock level(s): 2 filled, 1 cached already.\n"
    assert (cached_version(store, product), cached_version(store, other_product)) == (9, 1)


def test_a_fill_made_under_a_retired_generation_is_written_again_under_the_new_one(
    store, product, stocked
):
    """Another process recovering from an outage retires every entry (a new generation)
    while the levels are read: they are read again and written under the new one."""
    generations = []

    def load():
        generations.append(stock_level_cache.levels.generation())
        if len(generations) == 1:
            stock_level_cache.drop_all()  # between reading the generation and writing
        return [
            (store.pk, product.pk, StockLevelSerializer(stock_level_or_zero(store, product)).data)
        ]

    written, present, generation = stock_level_cache.fill_many(load)

    assert (written, present, generation) == (1, 0, generations[1])
    assert generations == [generations[0], str(int(generations[0]) + 1)]
    assert cached_version(store, product) == 1


@pytest.mark.services("Redis round trips are counted on a real Redis connection")
def test_warm_cache_writes_a_chunk_of_levels_in_one_round_trip(
    store, product, stocked, monkeypatch, redis_round_trips
):
    """The generation first, then per chunk every level's compare-and-set and the
    generation for the next chunk in one script call; never a round trip per level.
    Three levels in chunks of two: two chunks."""
    monkeypatch.setattr(warm_cache, "CHUNK_SIZE", 2)
    levels = stock_level_cache.levels
    levels.client.script_load(WRITE_MANY_IF_NEWER_SCRIPT)  # as any earlier fill leaves it

    with redis_round_trips() as trips:
        out, _ = command("warm_cache")

    assert out == "Cached 3 stock level(s): 3 filled, 0 cached already.\n"
    assert trips.commands() == ["GET", "EVALSHA", "EVALSHA"]
    assert is_cached(store, product)


# --- Help -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("low_stock_report", "at or below their reorder point"),
        ("warm_cache", "Exits 1 if the cache cannot be reached."),
    ],
)
def test_help_describes_the_command(name, expected, capsys):
    with pytest.raises(SystemExit) as exited:
        call_command(name, "--help")

    assert exited.value.code == 0
    assert expected in " ".join(capsys.readouterr().out.split())
