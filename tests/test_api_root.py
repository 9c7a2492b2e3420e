"""/api/v1/ is the API's root: it lists the endpoints, the browsable API's login lands
there, and the browsable API's breadcrumbs name every step of a path."""

import re
import uuid
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import resolve
from django.utils.module_loading import import_string
from rest_framework.test import APIClient

from catalog.models import Product
from inventory_site.api.errors import unknown_api_path
from stores.models import Role
from tests.api import api_client, assert_error
from tests.factories import TEST_PASSWORD, StaffFactory, StoreFactory, UserFactory, member

BASE = "http://testserver/api/v1"
STORE = f"{BASE}/stores/{{code}}"
PRODUCT = f"{BASE}/products/{{sku}}"
RESERVATION = f"{STORE}/reservations/{{reservation_id}}"
ROOT = {
    "stores": f"{BASE}/stores/",
    "products": f"{BASE}/products/",
    "audit": f"{BASE}/audit/",
    "auth_token": f"{BASE}/auth/token/",
    "schema": f"{BASE}/schema/",
    "docs": f"{BASE}/docs/",
    "store_endpoints": {
        "store": f"{STORE}/",
        "members": f"{STORE}/members/",
        "member": f"{STORE}/members/{{username}}/",
        "stock": f"{STORE}/stock/",
        "stock_level": f"{STORE}/stock/{{sku}}/",
        "receive": f"{STORE}/stock/{{sku}}/receive/",
        "adjust": f"{STORE}/stock/{{sku}}/adjust/",
        "set_count": f"{STORE}/stock/{{sku}}/set/",
        "purchase": f"{STORE}/stock/{{sku}}/purchase/",
        "transfers": f"{STORE}/transfers/",
        "bulk": f"{STORE}/stock/bulk/",
        "movements": f"{STORE}/movements/",
        "events": f"{STORE}/events/",
        "reservations": f"{STORE}/reservations/",
        "reservation": f"{RESERVATION}/",
        "reservation_commit": f"{RESERVATION}/commit/",
        "reservation_release": f"{RESERVATION}/release/",
    },
    "product_endpoints": {
        "product": f"{PRODUCT}/",
        "availability": f"{PRODUCT}/availability/",
    },
    "job_endpoints": {"job": f"{BASE}/jobs/{{job_id}}/"},
}


@pytest.mark.django_db
def test_the_api_root_lists_the_endpoints_to_anyone():
    response = api_client().get("/api/v1/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == ROOT


@pytest.mark.django_db
def test_every_url_of_the_api_root_answers_and_every_template_resolves():
    staff = StaffFactory()
    store = StoreFactory(code="berlin-01")
    client = api_client(staff)

    body = client.get("/api/v1/").json()

    for name in ["stores", "products", "audit", "schema", "docs"]:
        assert client.get(body[name]).status_code == 200, name
    assert client.post(body["auth_token"], {}, format="json").status_code == 400
    store_url = body["store_endpoints"]["stock"].format(code=store.code)
    assert client.get(store_url).status_code == 200
    values = {"code": "berlin-01", "sku": "TEE", "username": "alice"}
    values |= {"reservation_id": uuid.uuid4(), "job_id": uuid.uuid4()}
    for group in ("store_endpoints", "product_endpoints", "job_endpoints"):
        for name, template in body[group].items():
            path = urlsplit(template.format(**values)).path
            assert resolve(path).func is not unknown_api_path, name


@pytest.mark.django_db
def test_the_api_root_is_browsable_and_named(client):
    client.force_login(StaffFactory())

    response = client.get("/api/v1/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "<title>API root – Django REST framework</title>" in response.text
    assert response.context["breadcrumblist"] == [("API root", "/api/v1/")]
    assert f'href="{BASE}/stores/"' in response.text


@pytest.mark.django_db
def test_a_token_the_api_does_not_know_is_refused_at_the_root_too():
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")

    assert_error(client.get("/api/v1/"), 401)


@pytest.mark.django_db
def test_the_api_root_only_answers_reads():
    response = api_client(UserFactory()).post("/api/v1/", {}, format="json")

    assert_error(response, 405, "method_not_allowed")


# --- Breadcrumbs ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path, names",
    [
        ("/api/v1/stores/", ["API root", "Stores"]),
        ("/api/v1/stores/berlin-01/", ["API root", "Stores", "Store"]),
        ("/api/v1/stores/berlin-01/stock/", ["API root", "Stores", "Store", "Stock levels"]),
        (
            "/api/v1/stores/berlin-01/stock/TEE-RED/",
            ["API root", "Stores", "Store", "Stock levels", "Stock level"],
        ),
        ("/api/v1/stores/berlin-01/movements/", ["API root", "Stores", "Store", "Movements"]),
        ("/api/v1/stores/berlin-01/events/", ["API root", "Stores", "Store", "Stock events"]),
        (
            "/api/v1/stores/berlin-01/reservations/",
            ["API root", "Stores", "Store", "Reservations"],
        ),
        ("/api/v1/stores/berlin-01/members/", ["API root", "Stores", "Store", "Members"]),
        ("/api/v1/products/", ["API root", "Products"]),
        (
            "/api/v1/products/TEE-RED/availability/",
            ["API root", "Products", "Product", "Product availability"],
        ),
        ("/api/v1/audit/", ["API root", "Audit events"]),
    ],
)
def test_the_breadcrumbs_of_the_browsable_api_name_every_step(client, path, names):
    StoreFactory(code="berlin-01")
    Product.objects.create(sku="TEE-RED", name="T-shirt, red", price="19.90")
    client.force_login(StaffFactory())

    response = client.get(path, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    breadcrumbs = response.context["breadcrumblist"]
    assert [name for name, _ in breadcrumbs] == names
    assert breadcrumbs[-1][1] == path
    assert "Unknown Api Path" not in response.text


@pytest.mark.django_db
def test_each_breadcrumb_links_the_prefix_it_names(client):
    StoreFactory(code="berlin-01")
    client.force_login(StaffFactory())

    response = client.get("/api/v1/stores/berlin-01/stock/", HTTP_ACCEPT="text/html")

    assert response.context["breadcrumblist"] == [
        ("API root", "/api/v1/"),
        ("Stores", "/api/v1/stores/"),
        ("Store", "/api/v1/stores/berlin-01/"),
        ("Stock levels", "/api/v1/stores/berlin-01/stock/"),
    ]
    assert "<h1>Stock levels</h1>" in response.text


# --- Unknown paths stay JSON 404s ---------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/api/", "/api/v1", "/api/v1/nope/", "/api/v1/stores/berlin-01/stock", "/api/v2/"],
)
def test_paths_that_are_not_endpoints_stay_json_404s_in_a_browser(client, path):
    client.force_login(StaffFactory())

    response = client.get(path, HTTP_ACCEPT="text/html")

    detail = assert_error(response, 404, "not_found")["detail"]
    endpoint = f"{path}/"
    if path in ("/api/v1", "/api/v1/stores/berlin-01/stock"):  # but for the slash
        assert detail == f"Not found; the endpoint is {endpoint} (with a slash)."
    else:
        assert detail == "Not found."


@pytest.mark.django_db
def test_a_post_to_an_unknown_api_path_is_a_json_404_not_a_csrf_refusal():
    client = Client(enforce_csrf_checks=True)
    client.force_login(StaffFactory())

    response = client.post("/api/v1/nope/", {}, content_type="application/json")

    assert_error(response, 404, "not_found")


# --- Logging in ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_logging_in_at_the_browsable_api_lands_on_the_api_root(client):
    store = StoreFactory()
    member("alice", store, Role.CLERK)

    response = client.post("/api/v1/auth/login/", {"username": "alice", "password": TEST_PASSWORD})

    assert (response.status_code, response["Location"]) == (302, "/api/v1/")
    assert client.get("/api/v1/", HTTP_ACCEPT="text/html").context["user"].username == "alice"


@pytest.mark.django_db
def test_logging_in_from_an_api_page_goes_back_to_that_page(client):
    UserFactory(username="alice")

    response = client.post(
        "/api/v1/auth/login/?next=/api/v1/stores/",
        {"username": "alice", "password": TEST_PASSWORD, "next": "/api/v1/stores/"},
    )

    assert (response.status_code, response["Location"]) == (302, "/api/v1/stores/")


@pytest.mark.django_db
def test_the_admin_login_keeps_landing_on_the_admin(client):
    StaffFactory(username="alice")
    form = client.get("/admin/login/").text
    next_url = re.search(r'name="next" value="([^"]*)"', form)[1]

    response = client.post(
        "/admin/login/", {"username": "alice", "password": TEST_PASSWORD, "next": next_url}
    )

    assert (response.status_code, response["Location"]) == (302, "/admin/")


@pytest.mark.parametrize(
    "view_class, name",
    [
        ("stock.apis.StockLevelListApi", "Stock levels"),
        ("stock.apis.StockLevelDetailApi", "Stock level"),
        ("stock.apis.TransferCreateApi", "Transfers"),
        ("stock.apis.BulkJobCreateApi", "Bulk jobs"),
        ("stock.apis.BulkJobDetailApi", "Bulk job"),
        ("stock.apis.StockPurchaseApi", "Stock purchase"),
        ("stock.apis.ReservationCommitApi", "Reservation commit"),
        ("audit.apis.AuditEventListApi", "Audit events"),
        ("accounts.apis.ObtainTokenApi", "Obtain token"),
        ("inventory_site.api.root.ApiRootApi", "API root"),
    ],
)
def test_views_are_named_as_a_person_would_say_it(view_class, name):
    view = import_string(view_class)()

    assert view.get_view_name() == name


def test_a_post_without_the_trailing_slash_names_the_endpoint(db):
    response = APIClient().post("/api/v1/auth/token", {}, format="json")

    assert response.status_code == 404
    assert response.json() == {
        "detail": "Not found; the endpoint is /api/v1/auth/token/ (with a slash).",
        "code": "not_found",
    }
