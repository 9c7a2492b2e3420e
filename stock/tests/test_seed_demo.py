import re
from collections import Counter

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F

from audit.models import AuditEvent, AuditOutboxEntry
from catalog.cache import new_catalog_generation
from catalog.models import Product
from stock.cache import stock_level_cache
from stock.exceptions import InvalidStockOperation
from stock.models import Movement, MovementKind, Reservation, ReservationStatus, StockLevel
from stock.selectors import (
    low_stock_levels_of_store,
    stock_level_or_zero,
    stock_levels_with_ledger_drift,
    stock_levels_with_reservation_drift,
)
from stock.serializers import StockLevelSerializer
from stock.services import stock_seed_levels
from stores.models import Membership, Role, Store
from tests.factories import ProductFactory, StoreFactory

LOGIN_LINE = re.compile(r"^  (\w+)\s+password (\S+)\s+(.+)$", re.M)


def seed(capsys, *args) -> dict[str, tuple[str, str]]:
    call_command("seed_demo", *args)
    output = capsys.readouterr().out
    return {user: (password, scope) for user, password, scope in LOGIN_LINE.findall(output)}


@pytest.mark.django_db
def test_seed_demo_builds_stores_catalog_and_stock_through_the_services(capsys):
    logins = seed(capsys)

    assert Store.objects.count() == 3
    assert Product.objects.count() == 12
    assert StockLevel.objects.count() == 36
    assert Counter(Movement.objects.values_list("kind", flat=True)) == {
        MovementKind.RECEIVE: 36 + 1,
        MovementKind.ADJUST: 1,
        MovementKind.SALE: 1,
        MovementKind.RESERVE: 2,
        MovementKind.TRANSFER_OUT: 1,
        MovementKind.TRANSFER_IN: 1,
    }
    assert list(stock_levels_with_ledger_drift()) == []
    assert list(stock_levels_with_reservation_drift()) == []
    assert set(logins) == {"admin", "manager", "clerk"}
    for username, (password, _) in logins.items():
        assert authenticate(username=username, password=password).username == username
    assert logins["manager"][1] == "manager of berlin-01, hamburg-01"
    assert set(Membership.objects.values_list("user__username", "store__code", "role")) == {
        ("manager", "berlin-01", Role.MANAGER),
        ("manager", "hamburg-01", Role.MANAGER),
        ("clerk", "berlin-01", Role.CLERK),
    }


@pytest.mark.django_db
def test_a_second_run_keeps_the_data_and_issues_new_passwords(capsys):
    first = seed(capsys)
    movements = Movement.objects.count()

    second = seed(capsys)

    assert Movement.objects.count() == movements
    assert first["clerk"][0] != second["clerk"][0]
    assert authenticate(username="clerk", password=first["clerk"][0]) is None
    assert authenticate(username="clerk", password=second["clerk"][0]) is not None


def audit_records(prefix: str = "stock.") -> list[tuple[str, dict | None]]:
    """Audit entries whose action starts with ``prefix``, relayed or not, as
    (action, after), oldest first. (The demo logins' store grants are recorded too.)"""
    relayed = AuditEvent.objects.filter(action__startswith=prefix).order_by("sequence")
    pending = AuditOutboxEntry.objects.filter(action__startswith=prefix).order_by("pk")
    return [*relayed.values_list("action", "after"), *pending.values_list("action", "after")]


def assert_ledger_verifies(capsys, levels: int):
    capsys.readouterr()
    call_command("verify_ledger")
    assert capsys.readouterr().out == f"Ledger consistent: {levels} stock levels checked.\n"


@pytest.mark.django_db
def test_a_generated_run_stocks_every_product_in_every_store_with_one_import_each(capsys):
    logins = seed(capsys, "--stores", "20", "--products", "15")

    assert list(Store.objects.order_by("pk").values_list("code", flat=True)) == [
        f"store-{n:05d}" for n in range(1, 21)
    ]
    assert list(Product.objects.order_by("pk").values_list("sku", flat=True)) == [
        f"SKU-{n:05d}" for n in range(1, 16)
    ]
    levels = list(
        StockLevel.objects.values_list(
            "store_id", "product_id", "on_hand", "reserved", "version", "reorder_point"
        )
    )
    assert sorted((store, product) for store, product, *_ in levels) == sorted(
        (store, product)
        for store in Store.objects.values_list("pk", flat=True)
        for product in Product.objects.values_list("pk", flat=True)
    )
    assert all(
        (on_hand, reserved, version, reorder_point) == ((store * 31 + product * 17) % 200, 0, 1, 10)
        for store, product, on_hand, reserved, version, reorder_point in levels
    )
    movements = Movement.objects.values_list(
        "store_id",
        "product_id",
        "kind",
        "delta_on_hand",
        "delta_reserved",
        "on_hand_after",
        "reserved_after",
        "version_after",
    )
    assert sorted(movements) == sorted(
        (store, product, MovementKind.IMPORT, on_hand, 0, on_hand, 0, 1)
        for store, product, on_hand, *_ in levels
    )
    assert 0 < StockLevel.objects.filter(available__lte=F("reorder_point")).count() < 300
    assert_ledger_verifies(capsys, 300)
    assert audit_records() == [("stock.seed", {"stores": 20, "products": 15, "levels": 300})]
    assert logins["manager"][1] == "manager of store-00001, store-00002"
    assert logins["clerk"][1] == "clerk of store-00001"
    assert authenticate(username="admin", password=logins["admin"][0]).is_superuser


@pytest.mark.django_db
def test_a_generated_run_prints_the_time_of_each_phase(capsys):
    call_command("seed_demo", "--stores", "9", "--products", "2")

    output = capsys.readouterr().out
    for phase in ["stores", "products", "levels + movements + audit", "commit"]:
        assert re.search(rf"^  {re.escape(phase)}.* \d+\.\d\d s$", output, re.M), phase
    assert "Created 9 stores, stocked 2 products: 18 stock levels and 18 import movements" in (
        output
    )


@pytest.mark.django_db
@pytest.mark.parametrize("args", [["--stores", "9"], ["--products", "25"]])
def test_sizes_beyond_the_named_data_set_are_generated(args, capsys):
    call_command("seed_demo", *args)

    stores, products = Store.objects.count(), Product.objects.count()
    assert (stores, products) == ((9, 12) if args[0] == "--stores" else (3, 25))
    assert Store.objects.filter(code__startswith="store-").count() == stores
    assert Product.objects.filter(sku__startswith="SKU-").count() == products
    assert Movement.objects.filter(kind=MovementKind.IMPORT).count() == stores * products
    assert_ledger_verifies(capsys, stores * products)


@pytest.mark.django_db
def test_a_generated_run_retires_the_cached_catalog_after_commit(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks() as callbacks:
        call_command("seed_demo", "--stores", "10", "--products", "3")

    assert new_catalog_generation in callbacks


@pytest.mark.django_db
def test_a_generated_run_refuses_a_database_that_has_stores(capsys):
    seed(capsys)
    before = (Store.objects.count(), Product.objects.count(), Movement.objects.count())
    audited = audit_records(prefix="")

    with pytest.raises(CommandError, match="already has 3 stores.*--append"):
        call_command("seed_demo", "--stores", "20", "--products", "15")

    assert (Store.objects.count(), Product.objects.count(), Movement.objects.count()) == before
    assert audit_records(prefix="") == audited


@pytest.mark.django_db
def test_append_adds_stores_after_the_last_generated_one_and_reuses_the_skus(capsys):
    seed(capsys, "--stores", "20", "--products", "15")
    first_products = set(Product.objects.values_list("pk", flat=True))

    logins = seed(capsys, "--stores", "5", "--products", "30", "--append")

    new_stores = [f"store-{n:05d}" for n in range(21, 26)]
    codes = list(Store.objects.order_by("pk").values_list("code", flat=True))
    assert codes == [f"store-{n:05d}" for n in range(1, 21)] + new_stores
    assert Product.objects.count() == 30
    assert first_products < set(Product.objects.values_list("pk", flat=True))
    assert StockLevel.objects.filter(store__code__in=new_stores).count() == 5 * 30
    assert StockLevel.objects.count() == 20 * 15 + 5 * 30
    assert_ledger_verifies(capsys, 450)
    assert audit_records() == [
        ("stock.seed", {"stores": 20, "products": 15, "levels": 300}),
        ("stock.seed", {"stores": 5, "products": 30, "levels": 150}),
    ]
    assert logins["manager"][1] == "manager of store-00021, store-00022"


@pytest.mark.django_db
def test_seeding_refuses_stores_that_already_stock_the_products(capsys):
    seed(capsys, "--stores", "10", "--products", "2")
    stores, products = list(Store.objects.all()), list(Product.objects.all())
    before = Movement.objects.count()

    with pytest.raises(InvalidStockOperation):
        stock_seed_levels(stores=stores[:1], products=products)

    assert Movement.objects.count() == before
    assert StockLevel.objects.count() == 20
    assert len(audit_records()) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["--stores", "0"], "--stores must be from 1 to 100,000"),
        (["--stores", "-1"], "--stores must be from 1 to 100,000"),
        (["--stores", "100001"], "--stores must be from 1 to 100,000"),
        (["--products", "0"], "--products must be from 1 to 100,000"),
        (["--products", "-5"], "--products must be from 1 to 100,000"),
        (["--products", "100001"], "--products must be from 1 to 100,000"),
        (["--stores", "100000", "--products", "101"], "10,100,000 stock levels; at most"),
    ],
)
def test_seed_demo_refuses_sizes_it_cannot_build(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("seed_demo", *args)

    assert not Store.objects.exists()
    assert not Product.objects.exists()
    assert not audit_records()


@pytest.mark.django_db
def test_the_named_demo_data_is_made_through_the_services_and_audited(capsys):
    call_command("seed_demo", "--stores", "2", "--products", "3")

    actions = Counter(action for action, _ in audit_records(prefix=""))
    assert actions == {
        "store.create": 2,
        "product.create": 3,
        "stock.receive": 6 + 1,  # opening stock, and a delivery
        "stock.reorder_point": 6,
        "membership.grant": 3,  # manager of both stores, clerk of the first
        "stock.adjust": 1,
        "stock.sale": 1,
        "stock.reserve": 2,
        "reservation.create": 1,
        "stock.transfer_out": 1,
        "stock.transfer_in": 1,
    }


@pytest.mark.django_db
def test_a_level_cached_as_zero_before_seeding_reads_seeded_after(
    django_capture_on_commit_callbacks,
):
    store, product = StoreFactory(), ProductFactory()

    def load():
        return StockLevelSerializer(stock_level_or_zero(store, product)).data

    assert stock_level_cache.read(store.pk, product.pk, load)[0]["version"] == 0
    assert stock_level_cache.read(store.pk, product.pk, load)[1]  # cached as zero

    with django_capture_on_commit_callbacks(execute=True):
        stock_seed_levels(stores=[store], products=[product])

    body, hit = stock_level_cache.read(store.pk, product.pk, load)
    seeded = StockLevel.objects.get(store=store, product=product)
    assert (hit, body["version"], body["on_hand"]) == (False, 1, seeded.on_hand)


# --- What the named demo shows ----------------------------------------------------------

STORE_ROW = re.compile(r"^  ([a-z]+-01)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)\s+(\S+)$", re.M)


def store_table(output: str) -> list[tuple[str, ...]]:
    """(store, admin's role, manager's, clerk's, low levels, low-stock page) per row."""
    return [
        (code, admin, manager, clerk, int(low), page)
        for code, admin, manager, clerk, low, page in STORE_ROW.findall(output)
    ]


@pytest.mark.django_db
def test_seed_demo_prints_every_store_with_each_logins_role_and_low_stock(capsys):
    call_command("seed_demo")
    output = capsys.readouterr().out

    assert "Demo stores, and each login's role there:" in output
    assert store_table(output) == [
        ("berlin-01", "manager", "manager", "clerk", 5, "/stores/berlin-01/low-stock/"),
        ("hamburg-01", "manager", "manager", "-", 2, "/stores/hamburg-01/low-stock/"),
        ("munich-01", "manager", "-", "-", 1, "/stores/munich-01/low-stock/"),
    ]
    assert "clerk: + sells and reserves; manager: + receives" in output


@pytest.mark.django_db
def test_a_second_run_prints_the_stores_as_they_are_now(capsys):
    call_command("seed_demo")
    capsys.readouterr()
    berlin = Store.objects.get(code="berlin-01")
    level = low_stock_levels_of_store(berlin).first()
    StockLevel.objects.filter(pk=level.pk).update(reorder_point=0)

    call_command("seed_demo")
    output = capsys.readouterr().out

    assert output.startswith("Demo data already present; keeping it.\n")
    assert store_table(output)[0] == (
        "berlin-01",
        "manager",
        "manager",
        "clerk",
        4,
        "/stores/berlin-01/low-stock/",
    )


@pytest.mark.django_db
def test_every_demo_store_has_low_stock_to_show_on_a_fresh_run(capsys):
    seed(capsys)

    low = {
        store.code: list(
            low_stock_levels_of_store(store).values_list(
                "product__sku", "available", "reorder_point"
            )
        )
        for store in Store.objects.order_by("code")
    }
    assert low == {
        "berlin-01": [
            ("TEE-RED", 1, 12),
            ("CAP-RED", 1, 8),
            ("TEE-BLUE", 6, 12),
            ("CAP-BLUE", 4, 8),  # 2 of its 6 held by the web order
            ("TEE-BLACK", 9, 12),  # 2 of its 11 damaged
        ],
        "hamburg-01": [("TEE-RED", 8, 12), ("CAP-RED", 8, 8)],
        "munich-01": [("HOODIE-BLACK", 5, 6)],
    }
    reorder_points = dict(
        StockLevel.objects.filter(store__code="munich-01").values_list(
            "product__sku", "reorder_point"
        )
    )
    assert reorder_points == {
        f"{stem}-{colour}": point
        for stem, point in [("TEE", 12), ("HOODIE", 6), ("CAP", 8)]
        for colour in ["RED", "BLUE", "BLACK", "WHITE"]
    }


@pytest.mark.django_db
def test_the_demo_activity_is_done_by_the_demo_logins_with_notes_and_references(capsys):
    seed(capsys)

    activity = Movement.objects.exclude(reference="demo opening stock").order_by("pk")
    assert list(
        activity.values_list(
            "store__code",
            "product__sku",
            "kind",
            "delta_on_hand",
            "delta_reserved",
            "reason",
            "note",
            "actor__username",
        )
    ) == [
        (
            "berlin-01",
            "HOODIE-RED",
            "receive",
            24,
            0,
            "",
            "Weekly delivery from the warehouse.",
            "manager",
        ),
        (
            "berlin-01",
            "TEE-BLACK",
            "adjust",
            -2,
            0,
            "damaged",
            "Two torn while unpacking; thrown away.",
            "manager",
        ),
        ("berlin-01", "HOODIE-BLUE", "sale", -3, 0, "", "", "clerk"),
        ("berlin-01", "HOODIE-BLACK", "reserve", 0, 1, "", "", "clerk"),
        ("berlin-01", "CAP-BLUE", "reserve", 0, 2, "", "", "clerk"),
        (
            "berlin-01",
            "HOODIE-WHITE",
            "transfer_out",
            -5,
            0,
            "",
            "Refill for hamburg-01, short of it.",
            "manager",
        ),
        (
            "hamburg-01",
            "HOODIE-WHITE",
            "transfer_in",
            5,
            0,
            "",
            "Refill for hamburg-01, short of it.",
            "manager",
        ),
    ]
    [reservation] = Reservation.objects.all()
    assert (reservation.store.code, reservation.status, reservation.reference) == (
        "berlin-01",
        ReservationStatus.ACTIVE,
        "web order W-1001",
    )
    assert (reservation.expires_at - reservation.created_at).total_seconds() == 24 * 60 * 60


@pytest.mark.django_db
@pytest.mark.parametrize("stores, products", [(1, 1), (1, 2), (2, 1), (8, 24)])
def test_the_demo_activity_fits_every_named_size(capsys, stores, products):
    seed(capsys, "--stores", str(stores), "--products", str(products))

    kinds = Counter(
        Movement.objects.exclude(reference="demo opening stock").values_list("kind", flat=True)
    )
    transfers = 1 if stores > 1 else 0
    assert kinds == {
        MovementKind.RECEIVE: 1,
        MovementKind.ADJUST: 1,
        MovementKind.SALE: 1,
        MovementKind.RESERVE: 2 if products > 1 else 1,  # one product: its lines merge
        **({MovementKind.TRANSFER_OUT: 1, MovementKind.TRANSFER_IN: 1} if transfers else {}),
    }
    assert_ledger_verifies(capsys, stores * products)


@pytest.mark.django_db
def test_a_generated_run_lists_the_members_stores_and_counts_the_rest(capsys):
    call_command("seed_demo", "--stores", "20", "--products", "15")
    output = capsys.readouterr().out

    rows = re.findall(r"^  (store-\d{5}) +(\S+) +(\S+) +(\S+) +(\d+) +(\S+)$", output, re.M)
    low = {
        code: str(low_stock_levels_of_store(Store.objects.get(code=code)).count())
        for code in ["store-00001", "store-00002"]
    }
    assert rows == [
        (
            "store-00001",
            "manager",
            "manager",
            "clerk",
            low["store-00001"],
            "/stores/store-00001/low-stock/",
        ),
        (
            "store-00002",
            "manager",
            "manager",
            "-",
            low["store-00002"],
            "/stores/store-00002/low-stock/",
        ),
    ]
    assert (
        "  ... and 18 more stores (store-00003 to store-00020), where only admin holds a role.\n"
        in output
    )
