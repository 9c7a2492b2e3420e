"""``manage.py flash_gate``: switch a level's gate on or off, list the gated levels with
their tokens, reseed them; bad arguments are refused with a clear message."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditOutboxEntry
from stock.flash_gate.process import view
from stock.flash_gate.services import gate_switch
from stock.flash_gate.tokens import LevelKeys
from stock.models import FlashSaleGate
from stock.services import stock_purchase, stock_receive

from .conftest import NEEDS_REDIS, redis_state, tokens_of


def flash_gate(*args) -> str:
    out = io.StringIO()
    call_command("flash_gate", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def flash_gate_fails(*args) -> str:
    with pytest.raises(CommandError) as failed:
        call_command("flash_gate", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert failed.value.returncode == 1
    return str(failed.value)


def gated() -> list[tuple[str, str]]:
    return list(
        FlashSaleGate.objects.order_by("level__store__code").values_list(
            "level__store__code", "level__product__sku"
        )
    )


# --- Either mode --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["on", "paris-01", "TEE"], "No store with code 'paris-01'."),
        (["off", "berlin-01", "NO-SUCH-SKU"], "No product with SKU 'NO-SUCH-SKU'."),
        (["on", "berlin-01"], "the following arguments are required: SKU"),
        (["status", "berlin-01", "TEE", "more"], "unrecognized arguments: more"),
        (["status", "paris-01"], "No store with code 'paris-01'."),
        (["open", "berlin-01", "TEE"], "invalid choice: 'open'"),
        ([], "the following arguments are required: {on,off,status,reconcile}"),
    ],
)
def test_bad_arguments_are_refused_and_change_nothing(tee_in_berlin, args, message):
    assert message in flash_gate_fails(*args)
    assert gated() == []
    assert not AuditOutboxEntry.objects.filter(action="stock.flash_gate").exists()


def test_on_and_off_switch_the_gate_and_audit_it_once(without_redis, tee_in_berlin):
    switched_on = flash_gate("on", "berlin-01", "TEE")
    again = flash_gate("on", "berlin-01", "TEE")
    listed = flash_gate("status")
    switched_off = flash_gate("off", "berlin-01", "TEE")

    assert switched_on.splitlines() == [
        "The flash-sale gate of TEE in berlin-01 is now on.",
        "This site runs without Redis, which holds the gates' tokens: the gate takes effect "
        "once it runs with Redis.",
    ]
    assert again.splitlines()[0] == "The flash-sale gate of TEE in berlin-01 was on already."
    assert listed.splitlines() == [
        "store      sku  available  tokens  admitted  refunded",
        "berlin-01  TEE         10       -         -         -",
        "(This site runs without Redis, which holds the gates' tokens: the gates take effect "
        "once it runs with Redis.)",
    ]
    assert switched_off == "The flash-sale gate of TEE in berlin-01 is now off.\n"
    assert gated() == []
    assert list(
        AuditOutboxEntry.objects.filter(action="stock.flash_gate")
        .order_by("pk")
        .values_list("actor_id", "request_id", "after")
    ) == [
        (None, "command:flash_gate on", {"enabled": True}),
        (None, "command:flash_gate off", {"enabled": False}),
    ]


def test_status_lists_the_gated_levels_of_a_store_or_one_level(
    without_redis, tee_in_berlin, other_store, other_product
):
    berlin, tee = tee_in_berlin
    stock_receive(store=other_store, product=tee, quantity=3)
    for store, product in ((berlin, tee), (other_store, tee), (berlin, other_product)):
        gate_switch(store=store, product=product, enabled=True)

    every = flash_gate("status").splitlines()
    of_berlin = flash_gate("status", "berlin-01").splitlines()
    one = flash_gate("status", "berlin-01", "TEE").splitlines()
    none = flash_gate("status", "hamburg-01", "MUG-BLUE")

    assert [line.split()[:3] for line in every[1:4]] == [
        ["berlin-01", "MUG-BLUE", "0"],
        ["berlin-01", "TEE", "10"],
        ["hamburg-01", "TEE", "3"],
    ]
    assert [line.split()[1] for line in of_berlin[1:3]] == ["MUG-BLUE", "TEE"]
    assert [line.split()[:3] for line in one[1:2]] == [["berlin-01", "TEE", "10"]]
    assert none == "No flash-sale gate is on for MUG-BLUE in hamburg-01.\n"


def test_without_redis_reconcile_says_there_is_nothing_to_reseed(without_redis, tee_in_berlin):
    assert flash_gate("reconcile") == (
        "This site runs without Redis, which holds the gates' tokens: there are no tokens "
        "to reseed.\n"
    )


def test_help_names_the_subcommands(capsys):
    with pytest.raises(SystemExit) as exited:
        call_command("flash_gate", "--help")

    assert exited.value.code == 0
    assert "{on,off,status,reconcile}" in capsys.readouterr().out


# --- With Redis -----------------------------------------------------------------------------


@NEEDS_REDIS
@pytest.mark.django_db(transaction=True)
def test_on_seeds_a_token_per_available_unit_and_status_shows_the_counts(tee_in_berlin):
    berlin, tee = tee_in_berlin

    switched_on = flash_gate("on", "berlin-01", "TEE")
    stock_purchase(store=berlin, product=tee, quantity=4)

    assert switched_on.splitlines()[1] == "Tokens: 10."
    assert flash_gate("status").splitlines() == [
        "store      sku  available  tokens  admitted  refunded",
        "berlin-01  TEE          6       6         1         0",
    ]


@NEEDS_REDIS
@pytest.mark.django_db(transaction=True)
def test_reconcile_reseeds_tokens_redis_lost(tee_in_berlin):
    berlin, tee = tee_in_berlin
    flash_gate("on", "berlin-01", "TEE")
    assert redis_state(berlin, tee) is not None
    view.tokens.client.delete(LevelKeys.of(berlin.pk, tee.pk).hash)  # Redis lost the level
    assert tokens_of(berlin, tee) is None

    assert flash_gate("reconcile") == "Reseeded 1 gated level(s) from the database.\n"
    assert tokens_of(berlin, tee) == 10


@NEEDS_REDIS
@pytest.mark.django_db(transaction=True)
def test_off_forgets_the_level_in_redis(tee_in_berlin):
    berlin, tee = tee_in_berlin
    flash_gate("on", "berlin-01", "TEE")

    flash_gate("off", "berlin-01", "TEE")

    assert redis_state(berlin, tee) is None
    assert flash_gate("status") == "No flash-sale gate is on.\n"
