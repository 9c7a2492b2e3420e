import secrets
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from catalog.models import Product
from stock.models import StockLevel
from stock.services import stock_receive
from stores.models import Membership, Role, Store

CITIES = ["berlin", "hamburg", "munich", "cologne", "frankfurt", "leipzig", "dresden", "bremen"]
ITEMS = [
    ("TEE", "T-shirt", "19.90"),
    ("HOODIE", "Hoodie", "49.00"),
    ("CAP", "Cap", "14.50"),
    ("MUG", "Mug", "9.90"),
    ("BOTTLE", "Water bottle", "24.00"),
    ("TOTE", "Tote bag", "12.00"),
]
COLOURS = ["RED", "BLUE", "BLACK", "WHITE"]

# (username, is_staff and superuser, role, how many of the demo stores)
DEMO_USERS = [
    ("admin", True, None, 0),
    ("manager", False, Role.MANAGER, 2),
    ("clerk", False, Role.CLERK, 1),
]


class Command(BaseCommand):
    help = (
        "Load a small demo data set (stores, a catalog, stock received through the stock "
        "services) and demo logins whose new passwords it prints. Run it again and it "
        "keeps the data and only resets the passwords."
    )

    def add_arguments(self, parser):
        parser.add_argument("--stores", type=int, default=3, help="number of stores (1-8)")
        parser.add_argument(
            "--products", type=int, default=12, help=f"catalog size (1-{len(ITEMS) * len(COLOURS)})"
        )

    def handle(self, *args, stores: int, products: int, **options):
        if not 1 <= stores <= len(CITIES):
            raise CommandError(f"--stores must be from 1 to {len(CITIES)}.")
        if not 1 <= products <= len(ITEMS) * len(COLOURS):
            raise CommandError(f"--products must be from 1 to {len(ITEMS) * len(COLOURS)}.")
        if Store.objects.exists():
            self.stdout.write("Demo data already present; keeping it.")
            demo_stores = list(Store.objects.order_by("code")[:stores])
        else:
            demo_stores = self.create_catalog_and_stock(stores, products)
        self.print_logins(self.reset_users(demo_stores))

    @transaction.atomic
    def create_catalog_and_stock(self, store_count: int, product_count: int) -> list[Store]:
        stores = [
            Store.objects.create(code=f"{city}-01", name=f"{city.title()} Flagship")
            for city in CITIES[:store_count]
        ]
        catalog_spec = [
            (f"{code}-{colour}", f"{name}, {colour.lower()}", Decimal(price))
            for code, name, price in ITEMS
            for colour in COLOURS
        ]
        catalog = [
            Product.objects.create(sku=sku, name=name, price=price)
            for sku, name, price in catalog_spec[:product_count]
        ]
        for store_index, store in enumerate(stores):
            for product_index, product in enumerate(catalog):
                quantity = (store_index * 7 + product_index * 5) % 40 + 1
                stock_receive(
                    store=store, product=product, quantity=quantity, reference="demo opening stock"
                )
        self.stdout.write(
            f"Created {len(stores)} stores, {len(catalog)} products and "
            f"{StockLevel.objects.count()} stock levels."
        )
        return stores

    def reset_users(self, stores: list[Store]) -> list[tuple[str, str, str]]:
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
                Membership.objects.update_or_create(user=user, store=store, defaults={"role": role})
            scope = (
                "staff: every store, the catalog, /admin/"
                if is_admin
                else f"{role} of {', '.join(store.code for store in granted)}"
            )
            logins.append((username, password, scope))
        return logins

    def print_logins(self, logins):
        self.stdout.write(self.style.SUCCESS("Demo logins (new passwords on every run):"))
        for username, password, scope in logins:
            self.stdout.write(f"  {username:<8} password {password:<18} {scope}")
