import pytest

from stock.flash_gate.process import view
from stock.flash_gate.services import gate_state, gate_switch
from stock.flash_gate.tokens import LevelKeys
from stock.services import stock_receive

# The gate's tokens live in Redis: without it (the embedded mode) there is no gate.
pytestmark = pytest.mark.services("the flash-sale gate keeps its tokens in Redis")


@pytest.fixture
def gated(store, product):
    """``product`` in ``store`` with 10 units and its gate on."""
    stock_receive(store=store, product=product, quantity=10)
    gate_switch(store=store, product=product, enabled=True)
    return store, product


def tokens_of(store, product) -> int | None:
    return gate_state(store=store, product=product)["tokens"]


def redis_state(store, product):
    return view.tokens.state(LevelKeys.of(store.pk, product.pk))
