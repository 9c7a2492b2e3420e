import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models.functions import Length

from catalog.cache import new_catalog_generation
from catalog.models import Product
from catalog.services import product_create
from stock.models import AdjustmentReason, Movement, StockLevel
from stock.selectors import low_stock_levels_of_store
from stock.services import (
    MAX_RESERVATION_TTL_SECONDS,
    StockLine,
    reservation_create,
    stock_adjust,
    stock_purchase,
    stock_receive,
    stock_seed_levels,
    stock_set_reorder_point,
    stock_transfer,
)
from stores.access import role_in_store
from stores.models import Role, Store
from stores.services import membership_grant, store_create

CITIES = ["berlin", "hamburg", "munich", "cologne", "frankfurt", "leipzig", "dresden", "bremen"]
# (SKU stem, name, price, reorder point: at or below it the level is low stock)
ITEMS = [
    ("TEE", "T-shirt", "19.90", 12),
    ("HOODIE", "Hoodie", "49.00", 6),
    ("CAP", "Cap", "14.50", 8),
    ("MUG", "Mug", "9.90", 10),
    ("BOTTLE", "Water bottle", "24.00", 6),
    ("TOTE", "Tote bag", "12.00", 8),
]
COLOURS = ["RED", "BLUE", "BLACK", "WHITE"]
NAMED_PRODUCTS = len(ITEMS) * len(COLOURS)

MAX_STORES = 100_000
MAX_PRODUCTS = 100_000
# Twice the 10,000 x 500 load test, which takes about 2 GB on PostgreSQL and 2.5 minutes.
# One transaction holds every deferred foreign-key check until its commit: about 0.6 GB
# of server memory per 5,000,000 levels. Larger sets are built in runs with --append.
MAX_LEVELS = 10_000_000
GENERATED_STORE_PREFIX = "store-"
GENERATED_SKU_PREFIX = "SKU-"
GENERATED_REORDER_POINT = 10
BATCH_SIZE = 5_000

# (username, is_staff and superuser, role, how many of the demo stores)
DEMO_USERS = [
    ("admin", True, None, 0),
    ("manager", False, Role.MANAGER, 2),
    ("clerk", False, Role.CLERK, 1),
]
ROLES_EXPLAINED = (
    "viewer: reads stock; clerk: + sells and reserves; manager: + receives, adjusts, "
    "counts, transfers, sets reorder points, manages members, opens the low-stock page."
)


@dataclass(frozen=True)
class DemoLogin:
    user: object  # the user model
    password: str
    scope: str


class Command(BaseCommand):
    help = (
        "Load demo or load-test data and demo logins whose new passwords it prints. "
        f"Up to {len(CITIES)} stores and {NAMED_PRODUCTS} products (the default: 3 x 12) "
        "it builds a small named data set (berlin-01, TEE-RED, ...) through the stock "
        "services one change at a time, each change audited: opening stock, reorder "
        "points that leave a few levels low, and a day's activity in the first store by "
        "the demo logins (a delivery, a damaged item written off with a note, a sale, a "
        "reservation, a transfer to the second store); run it again and it keeps the "
        "data and only resets the passwords. It prints the logins and every demo store "
        "with each login's role there and its number of low levels. "
        "Larger sizes build generated data (store-00001, SKU-00001, ...) with set-based "
        f"inserts, up to {MAX_STORES:,} stores, {MAX_PRODUCTS:,} products and "
        f"{MAX_LEVELS:,} stock levels: every product in every store, each level with one "
        "'import' movement, all in one transaction, recorded as ONE audit event "
        "('stock.seed', with the numbers of stores, products and levels) instead of one "
        "per store, product and movement. A generated run refuses a database that already "
        "has stores, unless --append, which adds that many new stores after the highest "
        "store-NNNNN (reusing SKU-NNNNN products that exist), in a transaction of its own: "
        "larger sets are built in several runs. It prints the time of each phase."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--stores",
            type=int,
            default=3,
            help=f"number of stores (1-{MAX_STORES:,}; above {len(CITIES)}: generated)",
        )
        parser.add_argument(
            "--products",
            type=int,
            default=12,
            help=f"catalog size (1-{MAX_PRODUCTS:,}; above {NAMED_PRODUCTS}: generated)",
        )
        parser.add_argument(
            "--append",
            action="store_true",
            help="generated data: add the stores to a database that already has some",
        )

    def handle(self, *args, stores: int, products: int, append: bool, **options):
        if not 1 <= stores <= MAX_STORES:
            raise CommandError(f"--stores must be from 1 to {MAX_STORES:,}.")
        if not 1 <= products <= MAX_PRODUCTS:
            raise CommandError(f"--products must be from 1 to {MAX_PRODUCTS:,}.")
        if stores * products > MAX_LEVELS:
            raise CommandError(
                f"--stores x --products is {stores * products:,} stock levels; "
                f"at most {MAX_LEVELS:,}."
            )
        if append or stores > len(CITIES) or products > NAMED_PRODUCTS:
            demo_stores = self.create_generated_data(stores, products, append=append)
            logins = self.reset_users(demo_stores)
        elif Store.objects.exists():
            self.stdout.write("Demo data already present; keeping it.")
            demo_stores = list(Store.objects.order_by("code")[:stores])
            logins = self.reset_users(demo_stores)
        else:
            with transaction.atomic():
                demo_stores, catalog = self.create_catalog_and_stock(stores, products)
                logins = self.reset_users(demo_stores)
                self.create_activity(
                    demo_stores, catalog, {login.user.username: login.user for login in logins}
                )
        self.print_logins(logins)
        self.print_stores(demo_stores, logins)

    def create_catalog_and_stock(
        self, store_count: int, product_count: int
    ) -> tuple[list[Store], list[Product]]:
        """The named stores and catalog, each level's opening stock received and its
        reorder point set, so that a few levels start at or below it."""
        stores = [
            store_create(code=f"{city}-01", name=f"{city.title()} Flagship", actor=None)
            for city in CITIES[:store_count]
        ]
        catalog_spec = [
            (f"{code}-{colour}", f"{name}, {colour.lower()}", Decimal(price), reorder_point)
            for code, name, price, reorder_point in ITEMS
            for colour in COLOURS
        ][:product_count]
        catalog = [
            product_create(sku=sku, name=name, price=price, actor=None)
            for sku, name, price, _ in catalog_spec
        ]
        for store_index, store in enumerate(stores):
            for product_index, product in enumerate(catalog):
                quantity = (store_index * 7 + product_index * 5) % 40 + 1
                stock_receive(
                    store=store, product=product, quantity=quantity, reference="demo opening stock"
                )
                stock_set_reorder_point(
                    store=store, product=product, reorder_point=catalog_spec[product_index][3]
                )
        self.stdout.write(
            f"Created {len(stores)} stores, {len(catalog)} products and "
            f"{StockLevel.objects.count()} stock levels."
        )
        return stores, catalog

    def create_activity(self, stores: list[Store], catalog: list[Product], users: dict) -> None:
        """A day in the first store, through the stock services as the demo logins: a
        delivery, a damaged item written off with a note, a sale, a web order's
        reservation and (with a second store) a transfer refilling it. The ledger, the
        audit log, the reservations and the low-stock page then show how they look."""
        store, manager, clerk = stores[0], users["manager"], users["clerk"]

        def stocked(quantity: int, start: int) -> Product:
            """The first product from ``catalog[start]`` on (wrapping) with ``quantity``
            available in ``store``: small catalogs have small opening stock."""
            available = dict(
                StockLevel.objects.filter(store=store).values_list("product_id", "available")
            )
            for offset in range(len(catalog)):
                product = catalog[(start + offset) % len(catalog)]
                if available.get(product.pk, 0) >= quantity:
                    return product
            raise CommandError(f"No demo product has {quantity} units in {store.code}.")

        stock_receive(
            store=store,
            product=catalog[4 % len(catalog)],
            quantity=24,
            reference="delivery DN-1001",
            note="Weekly delivery from the warehouse.",
            actor=manager,
        )
        stock_adjust(
            store=store,
            product=stocked(2, start=2),
            delta=-2,
            reason=AdjustmentReason.DAMAGED,
            note="Two torn while unpacking; thrown away.",
            actor=manager,
        )
        stock_purchase(
            store=store,
            product=stocked(3, start=5),
            quantity=3,
            reference="till 1 receipt 0001",
            actor=clerk,
        )
        reservation_create(
            store=store,
            lines=[StockLine(stocked(1, start=6), 1), StockLine(stocked(2, start=9), 2)],
            ttl_seconds=MAX_RESERVATION_TTL_SECONDS,
            reference="web order W-1001",
            actor=clerk,
        )
        if len(stores) > 1:
            stock_transfer(
                from_store=store,
                to_store=stores[1],
                lines=[StockLine(stocked(5, start=7), 5)],
                note=f"Refill for {stores[1].code}, short of it.",
                actor=manager,
            )
        self.stdout.write(
            f"Demo activity in {store.code}: a delivery, a damaged item written off, a sale, "
            "a reservation" + (f" and a transfer to {stores[1].code}." if len(stores) > 1 else ".")
        )

    # --- Generated data -------------------------------------------------------------

    def create_generated_data(self, store_count: int, product_count: int, *, append: bool):
        """Stores, products, levels and their ledger in one transaction; returns the new
        stores. Levels are written by ``stock_seed_levels``, one INSERT ... SELECT each
        for levels and movements, so the time grows with the rows, not with round trips.

        On PostgreSQL the commit is the longest phase: Django's foreign keys are
        DEFERRABLE INITIALLY DEFERRED, so the four key checks of every level and its
        movement (store and product, each) run there, row by row."""
        started = time.perf_counter()
        existing = Store.objects.count()
        if existing and not append:
            raise CommandError(
                f"The database already has {existing:,} stores. Generated data goes into a "
                "database without stores; pass --append to add "
                f"{store_count:,} more stores to it."
            )
        with transaction.atomic():
            with self.phase("stores"):
                stores = self.create_generated_stores(store_count)
            with self.phase("products"):
                products = self.generated_products(product_count)
            with self.phase("levels + movements + audit"):
                levels = stock_seed_levels(
                    stores=stores,
                    products=products,
                    reorder_point=GENERATED_REORDER_POINT,
                    reference="demo seed",
                )
            # Bulk inserts send no post_save: retire cached catalog answers ourselves.
            transaction.on_commit(new_catalog_generation, robust=True)
            committing = time.perf_counter()
        self.report_phase("commit + after-commit work", committing)
        if connection.vendor == "postgresql":
            with self.phase("analyze"), connection.cursor() as cursor:
                # Fresh statistics, so the first queries over millions of new rows are
                # planned for their real size rather than for empty tables.
                tables = [Store, Product, StockLevel, Movement]
                names = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in tables)
                cursor.execute(f"ANALYZE {names}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {len(stores):,} stores, stocked {len(products):,} products: "
                f"{levels:,} stock levels and {levels:,} import movements, one audit event, "
                f"in {time.perf_counter() - started:.1f} s."
            )
        )
        return stores

    def create_generated_stores(self, count: int) -> list[Store]:
        first = self.next_generated_store_number()
        numbers = range(first, first + count)
        return Store.objects.bulk_create(
            (
                Store(code=f"{GENERATED_STORE_PREFIX}{n:05d}", name=f"Demo store {n:05d}")
                for n in numbers
            ),
            batch_size=BATCH_SIZE,
        )

    def next_generated_store_number(self) -> int:
        last = (
            Store.objects.filter(code__regex=rf"^{GENERATED_STORE_PREFIX}[0-9]+$")
            .order_by(Length("code").desc(), "-code")
            .values_list("code", flat=True)
            .first()
        )
        return int(last.removeprefix(GENERATED_STORE_PREFIX)) + 1 if last else 1

    def generated_products(self, count: int) -> list[Product]:
        """SKU-00001 .. SKU-<count>: those missing are created, existing ones reused."""
        skus = [f"{GENERATED_SKU_PREFIX}{n:05d}" for n in range(1, count + 1)]
        products = []
        for start in range(0, count, BATCH_SIZE):
            batch = skus[start : start + BATCH_SIZE]
            Product.objects.bulk_create(
                (
                    Product(
                        sku=sku,
                        name=f"Demo product {sku.removeprefix(GENERATED_SKU_PREFIX)}",
                        price=Decimal(start + index) % 100 + Decimal("0.99"),
                    )
                    for index, sku in enumerate(batch)
                ),
                ignore_conflicts=True,
            )
            products += Product.objects.filter(sku__in=batch).only("pk")
        if len(products) != count:
            # Only a SKU differing in case (the catalog is case-insensitive) gets here.
            raise CommandError(
                f"Found {len(products):,} of the {count:,} products SKU-00001 onwards; "
                "another product's SKU differs from one of them only in case."
            )
        return products

    @contextmanager
    def phase(self, name: str):
        started = time.perf_counter()
        yield
        self.report_phase(name, started)

    def report_phase(self, name: str, started: float) -> None:
        self.stdout.write(f"  {name:<28} {time.perf_counter() - started:8.2f} s")

    # --- Logins ---------------------------------------------------------------------

    def reset_users(self, stores: list[Store]) -> list[DemoLogin]:
        User = get_user_model()
        logins = []
        for username, is_admin, role, store_count in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = is_admin
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save()
            granted = stores[:store_count] if role else []
            for store in granted:
                membership_grant(store=store, user=user, role=role, actor=None)
            scope = (
                "staff: every store, the catalog, /admin/"
                if is_admin
                else f"{role} of {', '.join(store.code for store in granted)}"
            )
            logins.append(DemoLogin(user, password, scope))
        return logins

    def print_logins(self, logins: list[DemoLogin]) -> None:
        self.stdout.write(self.style.SUCCESS("Demo logins (new passwords on every run):"))
        for login in logins:
            username = login.user.username
            self.stdout.write(f"  {username:<8} password {login.password:<18} {login.scope}")

    def print_stores(self, stores: list[Store], logins: list[DemoLogin]) -> None:
        """Each demo store with the role every login holds there (as ``stores.access``
        decides it) and how many of its levels are low. A generated set lists the stores
        the members were given and counts the rest, where only the staff login acts."""
        shown = stores if len(stores) <= len(CITIES) else stores[: max(n for *_, n in DEMO_USERS)]
        names = [login.user.username for login in logins]
        self.stdout.write(self.style.SUCCESS("Demo stores, and each login's role there:"))
        header = ["store", *names, "low", "low-stock page (managers)"]
        self.stdout.write(
            "  " + "".join(f"{cell:<12}" for cell in header[:-2]) + " ".join(header[-2:])
        )
        for store in shown:
            roles = [str(role_in_store(login.user, store)[1] or "-") for login in logins]
            low = low_stock_levels_of_store(store).count()
            row = "".join(f"{cell:<12}" for cell in [store.code, *roles])
            self.stdout.write(f"  {row}{low:<4}/stores/{store.code}/low-stock/")
        if len(stores) > len(shown):
            self.stdout.write(
                f"  ... and {len(stores) - len(shown):,} more stores "
                f"({stores[len(shown)].code} to {stores[-1].code}), "
                "where only admin holds a role."
            )
        self.stdout.write(f"  Roles: {ROLES_EXPLAINED}")
