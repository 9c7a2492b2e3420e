"""What the stock services' state machines share (``test_services_stateful.py`` and the
flash-sale gate's ``flash_gate/test_gate_stateful.py``): the stores and products their
rules pick from, a hold made to fall due, the ledger's check after every step and the
settings they run with."""

from datetime import timedelta

from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from stock.models import Reservation
from stock.selectors import stock_levels_with_ledger_drift, stock_levels_with_reservation_drift

# Indexes into a machine's two stores and two products.
STORES = st.integers(0, 1)
PRODUCTS = st.integers(0, 1)


def make_due(reservation) -> None:
    """The reservation's expiry a second ago, as if its time had passed: a hold due for
    the expiry sweep, or for a sale that finds stock short."""
    Reservation.objects.filter(pk=reservation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def assert_the_ledger_adds_up(stores) -> None:
    """Every level of ``stores`` equals the sums of its movements, and its reserved units
    those of its active reservations."""
    assert not stock_levels_with_ledger_drift().filter(store__in=stores).exists()
    assert not stock_levels_with_reservation_drift().filter(store__in=stores).exists()


def run_machine(machine, *, max_examples: int) -> None:
    """Run ``machine`` for ``max_examples`` sequences of up to 30 steps, with no deadline:
    a step makes real database (and Redis) round trips."""
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
