"""The admin's adjust form meets the service's sign rule: the refusal is shown, and
nothing changes."""

import pytest

from stock.models import Movement
from stock.tests.helpers import level_of

from .helpers import browser, messages_of


@pytest.mark.parametrize(
    "delta, reason, sentence",
    [
        ("4", "damaged", "A damaged adjustment lowers stock: delta must be negative."),
        ("-4", "returned", "A returned adjustment raises stock: delta must be positive."),
    ],
)
def test_an_adjustment_against_its_reason_is_refused(manager, level, delta, reason, sentence):
    response = browser(manager).post(
        f"/admin/stock/stocklevel/{level.pk}/adjust/", {"delta": delta, "reason": reason}
    )

    assert sentence in [message for _, message in messages_of(response)]
    after = level_of(level.store, level.product)
    assert (after.on_hand, after.version) == (10, 1)
    assert Movement.objects.count() == 1
