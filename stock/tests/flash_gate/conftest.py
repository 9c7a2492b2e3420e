import pytest

from stock.flash_gate.process import view
from stock.flash_gate.services import gate_state, gate_switch
from stock.flash_gate.tokens import LevelKeys
from stock.services import stock_receive
from stores.models import Role
from tests.api import api_client
from tests.factories import member

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


# --- The API's and the command's: TEE in berlin-01 and its people ---------------------

GATE = "/api/v1/stores/berlin-01/stock/TEE/gate/"


@pytest.fixture
def tee_in_berlin(berlin, tee):
    """10 T-shirts in berlin-01, their gate off."""
    stock_receive(store=berlin, product=tee, quantity=10)
    return berlin, tee


@pytest.fixture
def clerk_api(berlin):
    """An API client with the token of a clerk of berlin-01 (who buys, and may not
    switch gates)."""
    return api_client(member("berlin-clerk", berlin, Role.CLERK))
