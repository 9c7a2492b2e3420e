import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from audit.context import origin
from catalog.models import Product, sku_validator
from catalog.services import product_create
from stock.exceptions import StockError
from stock.models import AdjustmentReason
from stock.operator_io import read_text
from stock.services import MAX_QUANTITY, stock_set_count
from stock.services.locks import ensure_stock_levels, lock_stock_levels
from stores.models import Store, store_code_validator
from stores.services import store_create

SKU_PREFIX = "V1-"
MAX_PRICE = Decimal("9999999999.99")
CENT = Decimal("0.01")
NAME_LENGTH = Product._meta.get_field("name").max_length
SKU_LENGTH = Product._meta.get_field("sku").max_length
STORE_NAME_LENGTH = Store._meta.get_field("name").max_length
LOOKUP_BATCH_SIZE = 500


@dataclass(frozen=True)
class Item:
    """One checked entry of inventory.json."""

    index: int
    sku: str
    name: str
    quantity: int
    price: Decimal

    @property
    def label(self) -> str:
        return _label(self.index, self.sku)


class ImportRefused(Exception):
    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


class Command(BaseCommand):
    help = (
        "Load the single-store tracker's inventory.json (a JSON array of "
        '{"id", "name", "quantity", "price"}) into one store. Each item becomes the '
        f"product {SKU_PREFIX}<id> (id 7 -> {SKU_PREFIX}7), created with the item's name "
        "and price if no product has that SKU (in any case); an existing one is kept as "
        "it is. The store's on_hand of it becomes quantity, a count with reason "
        "'correction' (0 included, so the store lists every item); a count that already "
        "matches is skipped, so running it again "
        "changes nothing. Every entry is checked first and bad ones are named by their "
        "index in the array, counted from 0; then everything is applied in one "
        "transaction, or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="the tracker's inventory.json")
        parser.add_argument("--store", required=True, metavar="CODE", help="the target store")
        parser.add_argument(
            "--create-store",
            action="store_true",
            help="create the store if it does not exist (needs --store-name)",
        )
        parser.add_argument("--store-name", metavar="NAME", help="name of a store created")

    def handle(self, *args, file, store, create_store, store_name, **options):
        target = Store.objects.filter(code=store).first()
        if target is None:
            if not create_store:
                raise CommandError(
                    f"No store with code {store!r}; add --create-store --store-name NAME to "
                    "create it."
                )
            self.check_new_store(store, store_name)
        try:
            items = self.read_items(file)
            with origin(request_id="command:import_v1_json"):
                report = self.apply(items, target, store, store_name)
        except ImportRefused as error:
            for problem in error.problems:
                self.stderr.write(problem)
            raise CommandError(
                f"{file}: nothing imported; {len(error.problems)} problem(s) found."
            ) from None
        except IntegrityError:  # a concurrent change created the same store or product
            raise CommandError(
                f"{file}: nothing imported; a store or product was created meanwhile by "
                "someone else. Run it again."
            ) from None
        for line in report:
            self.stdout.write(line)

    def check_new_store(self, code: str, name: str | None) -> None:
        try:
            store_code_validator(code)
        except ValidationError:
            raise CommandError(
                f"Cannot create store {code!r}: use lowercase letters, digits and single "
                "hyphens, e.g. berlin-01."
            ) from None
        if not name or not name.strip() or len(name) > STORE_NAME_LENGTH:
            raise CommandError(
                f"--create-store needs --store-name with 1 to {STORE_NAME_LENGTH} characters."
            )

    # --- Reading and checking -------------------------------------------------------

    def read_items(self, file: str) -> list[Item]:
        try:
            entries = json.loads(
                read_text(file), parse_float=Decimal, parse_constant=_refuse_constant
            )
        except ValueError as error:
            raise CommandError(f"{file}: not valid JSON ({error}).") from None
        if not isinstance(entries, list):
            raise CommandError(f"{file}: expected a JSON array of items.")
        items, problems, first_index = [], [], {}
        for index, entry in enumerate(entries):
            sku, item, found = _checked(index, entry)
            if sku is not None:
                if sku.lower() in first_index:
                    found.append(f"id repeats entry {first_index[sku.lower()]}")
                else:
                    first_index[sku.lower()] = index
            if found:
                problems.extend(f"{_label(index, sku)}: {problem}." for problem in found)
            else:
                items.append(item)
        if problems:
            raise ImportRefused(problems)
        return items

    # --- Applying -------------------------------------------------------------------

    @transaction.atomic
    def apply(self, items: list[Item], store: Store | None, code: str, store_name: str | None):
        """Create what is missing, then count; returns the lines to print.

        Existing levels are locked in primary-key order before any count, as every
        multi-row change does, so the skipped counts stay true until the commit. An item
        of quantity 0 the store has no level of is counted too, so that the store lists
        it as the tracker did."""
        report = []
        if store is None:
            store = store_create(code=code, name=store_name.strip(), actor=None)
            report.append(f"Created store {store.code} ({store.name}).")
        existing = _products_by_lower_sku([item.sku for item in items])
        products, created, kept = {}, 0, []
        for item in items:
            product = existing.get(item.sku.lower())
            if product is None:
                product = product_create(sku=item.sku, name=item.name, price=item.price, actor=None)
                created += 1
            elif (product.name, product.price) != (item.name, item.price):
                kept.append(
                    f"{item.label}: {product.sku} exists as {product.name!r} at "
                    f"{product.price}; kept as it is."
                )
            products[item.index] = product
        # Every level exists and is locked before the first count: a count takes the
        # store's event sequence row until the commit, and a level created or locked after
        # it would wait for a change that holds that level and waits for the sequence row
        # (stock.services.locks: levels first, then the sequence rows).
        ensure_stock_levels((store, product) for product in products.values())
        locked = lock_stock_levels((store, product) for product in products.values())
        counted, unchanged, refused = 0, 0, []
        for item in items:
            product = products[item.index]
            level = locked.get((store.pk, product.pk))
            # A level never changed (version 0, as created above) is as good as none: the
            # item is counted, so that the store lists it as the tracker did.
            if level is not None and level.version > 0 and level.on_hand == item.quantity:
                unchanged += 1
                continue
            try:
                stock_set_count(
                    store=store,
                    product=product,
                    on_hand=item.quantity,
                    reason=AdjustmentReason.CORRECTION,
                    note=f"import_v1_json {item.label}",
                )
            except StockError as error:
                refused.append(f"{item.label}: {error.detail}")
                continue
            counted += 1
        if refused:
            raise ImportRefused(refused)
        return [
            *report,
            *kept,
            f"{len(items)} item(s) into {store.code}: {created} product(s) created, "
            f"{len(items) - created} existing; {counted} count(s) set, {unchanged} unchanged.",
        ]


def _products_by_lower_sku(skus: list[str]) -> dict[str, Product]:
    """The products these SKUs name in any case (as the unique constraint sees them)."""
    lowered = sorted({sku.lower() for sku in skus})
    found = {}
    for start in range(0, len(lowered), LOOKUP_BATCH_SIZE):
        batch = lowered[start : start + LOOKUP_BATCH_SIZE]
        matches = Product.objects.annotate(lower_sku=Lower("sku")).filter(lower_sku__in=batch)
        found.update((product.sku.lower(), product) for product in matches)
    return found


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _label(index: int, sku: str | None) -> str:
    return f"entry {index} ({sku})" if sku else f"entry {index}"


def _shown(value) -> str:
    return str(value) if isinstance(value, Decimal) else json.dumps(value)


def _checked(index: int, entry) -> tuple[str | None, Item | None, list[str]]:
    """The entry's SKU (if its id makes one) and the entry as an Item, or None and what
    is wrong with it."""
    if not isinstance(entry, dict):
        return None, None, [f"expected an object, found {_shown(entry)}"]
    problems = []
    missing = [key for key in ("id", "name", "quantity", "price") if key not in entry]
    if missing:
        problems.append(f"no {', '.join(missing)}")
    sku = _sku(entry["id"], problems) if "id" in entry else None
    name, quantity, price = (entry.get(key) for key in ("name", "quantity", "price"))
    if "name" in entry:
        if not isinstance(name, str) or not name.strip():
            problems.append("name must be non-empty text")
        elif len(name.strip()) > NAME_LENGTH:
            problems.append(f"name is longer than {NAME_LENGTH} characters")
    if "quantity" in entry:
        if not _is_whole(quantity):
            problems.append(f"quantity {_shown(quantity)} is not a whole number")
        elif quantity < 0:
            problems.append(f"quantity {quantity} is negative")
        elif quantity > MAX_QUANTITY:
            problems.append(f"quantity {quantity} is more than {MAX_QUANTITY:,}")
    if "price" in entry and (price_problem := _price_problem(price)):
        problems.append(price_problem)
    if problems:
        return sku, None, problems
    return sku, Item(index, sku, name.strip(), quantity, Decimal(price).quantize(CENT)), []


def _sku(item_id, problems: list[str]) -> str | None:
    if _is_whole(item_id) and item_id >= 0:
        sku = f"{SKU_PREFIX}{item_id}"
    elif isinstance(item_id, str) and item_id.strip():
        sku = f"{SKU_PREFIX}{item_id.strip()}"
    else:
        problems.append(f"id {_shown(item_id)} is neither a whole number >= 0 nor text")
        return None
    try:
        sku_validator(sku)
    except ValidationError:
        problems.append(f"id {_shown(item_id)} makes no valid SKU ({sku})")
        return None
    if len(sku) > SKU_LENGTH:
        problems.append(f"id {_shown(item_id)} makes a SKU longer than {SKU_LENGTH} characters")
        return None
    return sku


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _price_problem(price) -> str | None:
    if isinstance(price, bool) or not isinstance(price, int | Decimal):
        return f"price {_shown(price)} is not a number"
    try:
        exact = Decimal(price)
        if exact < 0:
            return f"price {price} is negative"
        if exact > MAX_PRICE:
            return f"price {price} is more than {MAX_PRICE}"
        if exact != exact.quantize(CENT):
            return f"price {price} has more than 2 decimal places"
    except InvalidOperation:
        return f"price {price} is not a number"
    return None
