"""The REST API against its own OpenAPI schema, with schemathesis.

The schema is read from /api/v1/schema/ of a real HTTP server (pytest-django's
``live_server``: a threaded WSGI server in this process, on the test database), and every
operation it lists is called with generated requests, valid and invalid, once with the
token of a staff user and once with that of a store manager. No answer may be a 5xx, and
every answer must have a status code the schema lists for the operation, a documented
content type, and a body that matches the schema for that status.

Path parameters and the store, product and user names inside bodies are mostly drawn
from the seeded objects, so that requests reach real stores, products and stock levels
rather than stopping at a 404.
"""

import uuid
from collections import Counter

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from catalog.models import Product
from stock.services import bulk_job_submit, stock_receive
from stores.models import Membership, Role, Store
from tests.factories import (
    ProductFactory,
    StaffFactory,
    StoreFactory,
    UserFactory,
)

pytestmark = [
    pytest.mark.services(
        "the API is fuzzed as deployed, with Redis for its cache and rate limits "
        "(run with REDIS_URL set)"
    ),
    pytest.mark.postgresql(
        "the API is fuzzed as deployed, on PostgreSQL (run with DATABASE_URL set)"
    ),
    pytest.mark.django_db(transaction=True),
]

# Examples per operation in the fuzzing phase (the coverage phase adds its own edge
# cases): the whole file takes 30 to 60 s on two cores.
MAX_EXAMPLES = 15

# "0" is what the coverage phase puts in every string parameter (it ignores the
# dictionaries below): a store, a product and a user of that name let its requests reach
# real objects too.
STORES = ["0", "berlin-01", "hamburg-01", "munich-01"]
PRODUCTS = ["0", "TEE-RED-M", "MUG-BLUE", "CAP-OLD"]
USERNAMES = ["0", "st-staff", "st-manager", "st-clerk", "st-viewer"]
# Who holds which role where: the manager manages 0 and berlin-01, is a clerk in
# hamburg-01, cannot see munich-01.
MEMBERSHIPS = [
    ("st-manager", "0", Role.MANAGER),
    ("st-manager", "berlin-01", Role.MANAGER),
    ("st-manager", "hamburg-01", Role.CLERK),
    ("0", "0", Role.CLERK),
    ("st-clerk", "berlin-01", Role.CLERK),
    ("st-viewer", "berlin-01", Role.VIEWER),
]
UNLIMITED = "1000000/m"
User = get_user_model()
TOKEN_LOGIN = "POST /api/v1/auth/token/"
BULK_JOB = "POST /api/v1/stores/{code}/stock/bulk/"
JOB_STATUS = "GET /api/v1/jobs/{job_id}/"
STOCK_CHANGES = {
    "POST /api/v1/stores/{code}/stock/{sku}/receive/",
    "POST /api/v1/stores/{code}/stock/{sku}/adjust/",
    "POST /api/v1/stores/{code}/stock/{sku}/set/",
    "POST /api/v1/stores/{code}/stock/{sku}/purchase/",
    "POST /api/v1/stores/{code}/transfers/",
}


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def seed() -> tuple[dict[str, str], list[str]]:
    """Stores, products, stock, a user of every role and a bulk job of berlin-01; returns
    the API token by role, and the job's id."""
    zero, berlin, hamburg, munich = (
        StoreFactory(code=code, name=f"Store {code}") for code in STORES
    )
    products = [ProductFactory(sku=sku) for sku in PRODUCTS]
    retired = products[-1]
    retired.is_active = False
    retired.save(update_fields=["is_active"])
    for store in (zero, berlin, hamburg):
        for product in products[:-1]:
            stock_receive(store=store, product=product, quantity=500)
    stock_receive(store=munich, product=products[1], quantity=5)

    staff = StaffFactory(username="st-staff")
    for username in sorted({username for username, _, _ in MEMBERSHIPS}):
        UserFactory(username=username)
    restore_the_seeded_memberships()
    manager = User.objects.get(username="st-manager")
    job = bulk_job_submit(
        store=berlin, mode="set", items=[{"sku": "MUG-BLUE", "on_hand": 7}], actor=manager
    )
    tokens = {
        "staff": Token.objects.create(user=staff).key,
        "manager": Token.objects.create(user=manager).key,
    }
    return tokens, [str(job.pk)]


def schemathesis_config(job_ids: list[str]) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "dictionaries": {
                "stores": {"values": STORES},
                "skus": {"values": PRODUCTS},
                "usernames": {"values": USERNAMES},
                "jobs": {"values": job_ids},
            },
            "parameters": {
                "path.code": {"dictionary": "stores", "probability": 0.9},
                "path.sku": {"dictionary": "skus", "probability": 0.9},
                "path.username": {"dictionary": "usernames", "probability": 0.9},
                "body.to_store": {"dictionary": "stores", "probability": 0.7},
                "body.lines[*].sku": {"dictionary": "skus", "probability": 0.7},
                "body.username": {"dictionary": "usernames", "probability": 0.7},
                "body.items[*].sku": {"dictionary": "skus", "probability": 0.7},
                "path.job_id": {"dictionary": "jobs", "probability": 0.9},
            },
        }
    )


@pytest.fixture(params=["staff", "manager"])
def api_schema(request, live_server, settings):
    # schemathesis 4.32 reads and rewrites ``Function._nodeid`` (only to label each
    # operation), an attribute pytest 9.2 no longer has; give it one to work with.
    request.node._nodeid = request.node.nodeid
    settings.API_RATE_PER_USER = UNLIMITED
    settings.API_RATE_PER_IP = UNLIMITED
    settings.API_RATE_TOKEN_PER_IP = UNLIMITED
    settings.LOGIN_RATE_PER_USERNAME = UNLIMITED
    # Cache keys of its own: nothing an earlier run left in Redis answers for this one.
    settings.CACHES = {
        **django_settings.CACHES,
        "default": {
            **django_settings.CACHES["default"],
            "KEY_PREFIX": f"schemathesis-{uuid.uuid4().hex}",
        },
    }
    tokens, job_ids = seed()
    token = tokens[request.param]
    schema = schemathesis.openapi.from_url(
        f"{live_server.url}/api/v1/schema/?format=json",
        config=schemathesis_config(job_ids),
        timeout=10,
    )
    schema.config.update(base_url=live_server.url, headers={"Authorization": f"Token {token}"})
    return schema


@pytest.fixture
def answers(api_schema):
    """Status codes by request line; afterwards, proof that the requests really got in."""
    counted: dict[str, Counter] = {}
    yield counted
    statuses = sum(counted.values(), Counter())
    assert statuses, "no request was sent"
    # The token endpoint ignores the token sent and answers wrong passwords 401.
    refused = {label for label, status in counted.items() if status[401]} - {TOKEN_LOGIN}
    assert not refused, f"the token was refused: {counted}"
    changed = {label for label in STOCK_CHANGES if counted.get(label, {}).get(200)}
    assert changed, f"no stock-changing request succeeded: {counted}"
    assert counted.get(BULK_JOB, {}).get(202), f"no bulk job was accepted: {counted}"
    assert counted.get(JOB_STATUS, {}).get(200), f"no bulk job was read: {counted}"


# The live stream is the events process's (ASGI, an answer that never ends): this
# server answers it 503 whatever is asked, so it is left out here; events/tests/stream/
# tests it served, and test_api_docs its place in the schema.
STREAM = "/api/v1/stores/{code}/events/stream/"
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path=STREAM)


@schema.parametrize()
def test_every_answer_matches_the_schema(case, answers):
    response = case.call_and_validate(checks=CHECKS, timeout=10)
    # Keyed by the method sent: the coverage phase also tries methods the path lacks.
    sent = f"{case.method.upper()} {case.operation.path}"
    answers.setdefault(sent, Counter())[response.status_code] += 1
    if case.method.upper() == "PATCH" and response.status_code == 200:
        reactivate_the_seeded_objects()
    if "/members/" in case.operation.path and case.method.upper() in {"POST", "DELETE"}:
        restore_the_seeded_memberships()


def reactivate_the_seeded_objects():
    """A PATCH may have deactivated a store or a product (a stock change there is then
    409); bring them back, so that the operations fuzzed after it still reach stock."""
    Store.objects.filter(is_active=False).update(is_active=True)
    Product.objects.filter(is_active=False).exclude(sku=PRODUCTS[-1]).update(is_active=True)


def restore_the_seeded_memberships():
    """A member request may have revoked the manager's role in a store, or changed it
    (the manager may revoke their own); give the seeded roles back, saving each, so that
    the lookup cache retires what it holds of the old ones."""
    for username, code, role in MEMBERSHIPS:
        Membership.objects.update_or_create(
            user=User.objects.get(username=username),
            store=Store.objects.get(code=code),
            defaults={"role": role},
        )
