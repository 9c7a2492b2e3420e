import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import Product
from stock.models import Movement, MovementKind, StockLevel
from stock.selectors import stock_levels_with_ledger_drift
from stores.models import Membership, Role, Store

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
    assert Movement.objects.exclude(kind=MovementKind.RECEIVE).count() == 0
    assert list(stock_levels_with_ledger_drift()) == []
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


@pytest.mark.django_db
@pytest.mark.parametrize("args", [["--stores", "0"], ["--stores", "9"], ["--products", "25"]])
def test_seed_demo_refuses_sizes_it_cannot_build(args):
    with pytest.raises(CommandError):
        call_command("seed_demo", *args)

    assert not Store.objects.exists()
