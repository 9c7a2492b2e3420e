"""A body that is not JSON answers 415 ``unsupported_media_type``, as HTTP says, on every
endpoint that reads one; an empty body reads as no body whatever its type."""

import pytest

from stock.services import stock_receive
from stores.models import Role
from tests.api import api_client, assert_error
from tests.factories import MembershipFactory, ProductFactory, StaffFactory, StoreFactory

BODIES = [
    ("post", "/api/v1/auth/token/"),
    ("post", "/api/v1/stores/"),
    ("patch", "/api/v1/stores/berlin-01/"),
    ("post", "/api/v1/stores/berlin-01/members/"),
    ("post", "/api/v1/products/"),
    ("patch", "/api/v1/products/TEE/"),
    ("patch", "/api/v1/stores/berlin-01/stock/TEE/"),
    ("post", "/api/v1/stores/berlin-01/stock/TEE/receive/"),
    ("post", "/api/v1/stores/berlin-01/stock/TEE/adjust/"),
    ("post", "/api/v1/stores/berlin-01/stock/TEE/set/"),
    ("post", "/api/v1/stores/berlin-01/stock/TEE/purchase/"),
    ("post", "/api/v1/stores/berlin-01/transfers/"),
    ("post", "/api/v1/stores/berlin-01/reservations/"),
]


@pytest.fixture
def staff(db):
    berlin, tee = StoreFactory(code="berlin-01"), ProductFactory(sku="TEE")
    stock_receive(store=berlin, product=tee, quantity=5)
    user = StaffFactory(username="staff", is_superuser=True)
    MembershipFactory(user=user, store=berlin, role=Role.MANAGER)
    return user


@pytest.mark.parametrize("method, path", BODIES)
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data"],
)
def test_a_body_that_is_not_json_is_415(staff, method, path, content_type):
    response = getattr(api_client(staff), method)(path, "x=1", content_type=content_type)

    body = assert_error(response, 415, "unsupported_media_type")
    assert body["detail"].endswith("Send the body as JSON (Content-Type: application/json).")
    assert set(body) == {"detail", "code"}


def test_json_with_a_charset_is_json(staff):
    response = api_client(staff).post(
        "/api/v1/stores/berlin-01/stock/TEE/purchase/",
        '{"quantity": 1}',
        content_type="application/json; charset=utf-8",
    )

    assert (response.status_code, response.json()["on_hand"]) == (200, 4)
