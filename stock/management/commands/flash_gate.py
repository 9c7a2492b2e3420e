from django.core.management.base import BaseCommand, CommandError

from audit.context import origin
from stock.flash_gate.services import (
    gate_state,
    gate_switch,
    gates_have_tokens,
    gates_reconcile_safely,
)
from stock.models import FlashSaleGate
from stock.operator_io import product_by_sku, store_by_code, text_table

NO_REDIS = "This site runs without Redis, which holds the gates' tokens"


def shown(value) -> str:
    return "-" if value is None else str(value)


class Command(BaseCommand):
    help = (
        "Switch the flash-sale gate of a stock level on or off, list the gated levels, or "
        "reseed their tokens from the database. While a level's gate is on, Redis admits "
        "its buyers before the database (README, 'Flash-sale gate'). Switching is audited "
        "(with no acting user). Run 'manage.py flash_gate <subcommand> --help' for each one."
    )

    def add_arguments(self, parser):
        subcommands = parser.add_subparsers(
            dest="subcommand", required=True, metavar="{on,off,status,reconcile}"
        )
        for name, what in (
            ("on", "switch a level's gate on: Redis is seeded with its available units"),
            ("off", "switch a level's gate off: its buyers go straight to the database"),
        ):
            switch = subcommands.add_parser(name, help=what, description=what.capitalize() + ".")
            switch.add_argument("store", metavar="STORE", help="the store's code")
            switch.add_argument("sku", metavar="SKU", help="the product's SKU")

        status = subcommands.add_parser(
            "status",
            help="list the gated levels",
            description="List the levels whose gate is on (of STORE, or of SKU in STORE): "
            "available units in the database, the tokens Redis holds, how many buyers it "
            "admitted and how many of those the database refused (refunded). '-': Redis "
            "holds nothing for the level (no Redis, Redis down, or not reseeded yet).",
        )
        status.add_argument("store", metavar="STORE", nargs="?", help="only this store")
        status.add_argument("sku", metavar="SKU", nargs="?", help="only this product")

        subcommands.add_parser(
            "reconcile",
            help="reseed every gate's tokens from the database",
            description="Reseed every gated level's tokens from the database now and "
            "forget levels whose gate is off, as beat does every "
            "FLASH_GATE_RECONCILE_SECONDS; prints how many levels were reseeded.",
        )

    def handle(self, *args, subcommand: str, **options):
        run = {
            "on": self.switch_on,
            "off": self.switch_off,
            "status": self.status,
            "reconcile": self.reconcile,
        }[subcommand]
        with origin(request_id=f"command:flash_gate {subcommand}"):
            run(**options)

    def switch_on(self, *, store: str, sku: str, **options):
        self.switch(store, sku, enabled=True)

    def switch_off(self, *, store: str, sku: str, **options):
        self.switch(store, sku, enabled=False)

    def switch(self, code: str, sku: str, *, enabled: bool):
        store, product = store_by_code(code), product_by_sku(sku)
        changed = gate_switch(store=store, product=product, enabled=enabled, actor=None)
        state = "on" if enabled else "off"
        what = f"The flash-sale gate of {product.sku} in {store.code}"
        self.stdout.write(f"{what} is now {state}." if changed else f"{what} was {state} already.")
        if not enabled:
            return
        if gates_have_tokens():
            tokens = gate_state(store=store, product=product)["tokens"]
            self.stdout.write(f"Tokens: {shown(tokens)}.")
        else:
            self.stdout.write(f"{NO_REDIS}: the gate takes effect once it runs with Redis.")

    def status(self, *, store: str | None, sku: str | None, **options):
        gates = FlashSaleGate.objects.select_related("level__store", "level__product").order_by(
            "level__store__code", "level__product__sku"
        )
        if store is not None:
            gates = gates.filter(level__store=store_by_code(store))
        if sku is not None:
            gates = gates.filter(level__product=product_by_sku(sku))
        rows = []
        for gate in gates:
            level = gate.level
            state = gate_state(store=level.store, product=level.product)
            rows.append(
                [
                    level.store.code,
                    level.product.sku,
                    level.available,
                    shown(state["tokens"]),
                    shown(state["admitted"]),
                    shown(state["refunded"]),
                ]
            )
        if not rows:
            where = (f" for {sku}" if sku else "") + (f" in {store}" if store else "")
            self.stdout.write(f"No flash-sale gate is on{where}.")
            return
        headers = ["store", "sku", "available", "tokens", "admitted", "refunded"]
        for line in text_table(headers, rows, numeric={2, 3, 4, 5}):
            self.stdout.write(line)
        if not gates_have_tokens():
            self.stdout.write(f"({NO_REDIS}: the gates take effect once it runs with Redis.)")

    def reconcile(self, **options):
        if not gates_have_tokens():
            self.stdout.write(f"{NO_REDIS}: there are no tokens to reseed.")
            return
        seeded = gates_reconcile_safely()
        if seeded is None:
            raise CommandError(
                "Redis did not answer: nothing was reseeded. Beat tries again every "
                "FLASH_GATE_RECONCILE_SECONDS."
            )
        self.stdout.write(f"Reseeded {seeded} gated level(s) from the database.")
