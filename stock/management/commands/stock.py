from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from audit.context import origin
from catalog.models import Product
from catalog.serializers import ProductSerializer
from catalog.services import product_create, product_update
from stock.exceptions import StockError
from stock.models import AdjustmentReason
from stock.operator_io import (
    ITERATOR_CHUNK_SIZE,
    WHOLE_NUMBER,
    product_by_sku,
    stock_levels_for_report,
    store_by_code,
    text_table,
)
from stock.serializers import MAX_NOTE_LENGTH
from stock.services import stock_adjust, stock_receive

REASONS = ", ".join(AdjustmentReason.values)


class Command(BaseCommand):
    help = (
        "The single-store tracker's operations on this system: add, retire and list "
        "products, and move stock in one store. Every change goes through the catalog "
        "and stock services, so it is checked, written to the ledger and audited (with "
        "no acting user). Run 'manage.py stock <subcommand> --help' for each one."
    )

    def add_arguments(self, parser):
        subcommands = parser.add_subparsers(
            dest="subcommand", required=True, metavar="{add-product,move,remove-product,show}"
        )

        add = subcommands.add_parser(
            "add-product",
            help="add a product to the shared catalog",
            description="Add a product to the catalog shared by every store. The SKU must "
            "be new, whatever its case (ABC-1 and abc-1 are one product).",
        )
        add.add_argument("--sku", required=True, help="letters, digits, '.', '_' and '-'")
        add.add_argument("--name", required=True, help="up to 200 characters")
        add.add_argument("--price", required=True, help="a decimal such as 9.90 (>= 0)")
        add.add_argument("--description", default="", help="optional longer text")

        move = subcommands.add_parser(
            "move",
            help="change the units on hand of a product in a store",
            description="Change on_hand of SKU in STORE_CODE by DELTA and print the level "
            "after. A positive DELTA with reason 'received' is a delivery (receive); any "
            "other combination is an adjustment with that reason. A change that would take "
            "away units that are not available is refused and nothing changes.",
        )
        move.add_argument("store", metavar="STORE_CODE", help="the store's code")
        move.add_argument("sku", metavar="SKU", help="the product's SKU")
        move.add_argument("delta", metavar="DELTA", help="a non-zero whole number: +5, 5 or -3")
        move.add_argument("--reason", required=True, metavar="REASON", help=f"one of: {REASONS}")
        move.add_argument(
            "--note", default="", help=f"kept on the ledger entry (up to {MAX_NOTE_LENGTH})"
        )

        remove = subcommands.add_parser(
            "remove-product",
            help="retire a product (never deletes it)",
            description="Mark the product inactive. It is never deleted: its stock "
            "history stays, and 'show --all' still lists it.",
        )
        remove.add_argument("sku", metavar="SKU", help="the product's SKU")

        show = subcommands.add_parser(
            "show",
            help="print a store's stock as a table",
            description="Print the stock levels of a store by SKU: on hand, reserved, "
            "available and reorder point, marked LOW where available is at or below the "
            "reorder point. Products never stocked in the store are not listed.",
        )
        show.add_argument("store", metavar="STORE_CODE", help="the store's code")
        show.add_argument(
            "--all",
            action="store_true",
            dest="show_all",
            help="list inactive (retired) products too",
        )

    def handle(self, *args, subcommand: str, **options):
        run = {
            "add-product": self.add_product,
            "move": self.move,
            "remove-product": self.remove_product,
            "show": self.show,
        }[subcommand]
        with origin(request_id=f"command:stock {subcommand}"):
            run(**options)

    def add_product(self, *, sku: str, name: str, price: str, description: str, **options):
        existing = Product.objects.filter(sku__iexact=sku).first()
        if existing is not None:
            raise CommandError(f"A product with SKU {existing.sku} already exists.")
        data = {"sku": sku, "name": name, "price": price, "description": description}
        checked = ProductSerializer(data=data)
        if not checked.is_valid():
            raise CommandError(
                " ".join(
                    f"--{field}: {' '.join(str(message) for message in messages)}"
                    for field, messages in checked.errors.items()
                )
            )
        try:
            product = product_create(actor=None, **checked.validated_data)
        except IntegrityError:  # created by someone else since the check
            raise CommandError(f"A product with SKU {sku} already exists.") from None
        self.stdout.write(f"Added {product.sku} {product.name!r} at {product.price}.")

    def move(self, *, store: str, sku: str, delta: str, reason: str, note: str, **options):
        if not WHOLE_NUMBER.fullmatch(delta) or int(delta) == 0:
            raise CommandError(
                f"DELTA must be a non-zero whole number such as +5 or -3, not {delta!r}."
            )
        if reason not in AdjustmentReason.values:
            raise CommandError(f"Unknown reason {reason!r}; use one of: {REASONS}.")
        if len(note) > MAX_NOTE_LENGTH:
            raise CommandError(f"--note is longer than {MAX_NOTE_LENGTH} characters.")
        place, product, change = store_by_code(store), product_by_sku(sku), int(delta)
        try:
            if change > 0 and reason == AdjustmentReason.RECEIVED:
                level = stock_receive(store=place, product=product, quantity=change, note=note)
            else:
                level = stock_adjust(
                    store=place, product=product, delta=change, reason=reason, note=note
                )
        except StockError as error:
            raise CommandError(error.detail) from None
        self.stdout.write(
            f"{place.code} {product.sku}: on hand {level.on_hand}, reserved {level.reserved}, "
            f"available {level.available}, version {level.version}."
        )

    def remove_product(self, *, sku: str, **options):
        product = product_by_sku(sku)
        if not product.is_active:
            self.stdout.write(f"{product.sku} is already inactive.")
            return
        product_update(product=product, is_active=False, actor=None)
        self.stdout.write(f"{product.sku} is now inactive; its stock history is kept.")

    def show(self, *, store: str, show_all: bool, **options):
        place = store_by_code(store)
        levels = stock_levels_for_report(place)
        hidden = 0
        if not show_all:
            hidden = levels.filter(product__is_active=False).count()
            levels = levels.filter(product__is_active=True)
        rows = [
            [
                level.product.sku,
                level.product.name,
                level.on_hand,
                level.reserved,
                level.available,
                level.reorder_point,
                " ".join(
                    marker
                    for marker, applies in (
                        ("LOW", level.is_low),
                        ("inactive", not level.product.is_active),
                    )
                    if applies
                ),
            ]
            for level in levels.iterator(chunk_size=ITERATOR_CHUNK_SIZE)
        ]
        if rows:
            headers = ["sku", "name", "on hand", "reserved", "available", "reorder point"]
            for line in text_table(headers, rows, numeric={2, 3, 4, 5}):
                self.stdout.write(line)
        else:
            self.stdout.write(f"No stock in {place.code}.")
        if hidden:
            self.stdout.write(f"({hidden} inactive product(s) not shown; --all lists them.)")
