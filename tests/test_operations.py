"""The operations endpoints of API.md (/healthz, /readyz, /metrics) and the API's error
pages: under /api/ every error is JSON, never HTML.

Outages are real: the cache or the broker points at a local port where nothing listens.
"""

import json
import time

import pytest
from django.conf import settings as django_settings
from django.test import RequestFactory

from inventory_site.api import errors
from stock.services import stock_receive
from stores.models import Role
from tests.api import api_client, assert_error
from tests.factories import MembershipFactory, ProductFactory, StoreFactory
from tests.metrics import PROMETHEUS_TEXT, by_label, read_metrics, sample

# Embedded, Celery runs tasks in-process and readyz has no broker to ask.
BROKER_WHEN_UP = "eager" if django_settings.CELERY_TASK_ALWAYS_EAGER else "ok"


def timed_get(client, path):
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


# --- /healthz ---------------------------------------------------------------------------


def test_healthz_answers_ok_while_cache_and_broker_are_down(client, dead_cache, dead_broker):
    """No django_db mark either: liveness touches no dependency at all."""
    response, seconds = timed_get(client, "/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert seconds < 1


# --- /readyz ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_readyz_answers_ready_with_every_check(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "cache": "ok", "broker": BROKER_WHEN_UP},
    }
    assert response["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"


def test_readyz_is_read_only(client):
    assert client.post("/readyz").status_code == 405


@pytest.mark.django_db
def test_readyz_answers_503_naming_the_cache_when_redis_is_gone(client, dead_cache, caplog):
    response, seconds = timed_get(client, "/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "failed": ["cache"],
        "checks": {"database": "ok", "cache": "error", "broker": BROKER_WHEN_UP},
    }
    assert seconds < 3
    # Where the cache is, and why it failed, is in the log only.
    assert str(dead_cache) not in response.content.decode()
    logged = [r.getMessage() for r in caplog.records if r.name == "inventory_site.health"]
    assert len(logged) == 1 and logged[0].startswith("readiness check cache failed: ")
    assert f"127.0.0.1:{dead_cache}" in logged[0]


@pytest.mark.django_db
def test_readyz_answers_503_naming_the_broker_when_it_is_gone(client, dead_broker, caplog):
    response, seconds = timed_get(client, "/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "failed": ["broker"],
        "checks": {"database": "ok", "cache": "ok", "broker": "error"},
    }
    assert seconds < 5
    logged = [r.getMessage() for r in caplog.records if r.name == "inventory_site.health"]
    assert len(logged) == 1 and logged[0].startswith("readiness check broker failed: ")
    assert "OperationalError" in logged[0]


@pytest.mark.django_db
def test_readyz_names_both_when_cache_and_broker_are_gone(client, dead_cache, dead_broker):
    response, seconds = timed_get(client, "/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["cache", "broker"]
    assert response.json()["checks"]["database"] == "ok"
    assert seconds < 5


@pytest.mark.django_db
def test_readyz_is_ready_again_once_the_broker_is_back(client, dead_broker):
    assert client.get("/readyz").status_code == 503
    dead_broker()

    response = client.get("/readyz")

    assert (response.status_code, response.json()["checks"]["broker"]) == (200, BROKER_WHEN_UP)


# --- /metrics ---------------------------------------------------------------------------


METRICS_TOKEN = "scrape-" + "s3cret" * 8


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token",
        f"Bearer {METRICS_TOKEN}x",
        f"Bearer {METRICS_TOKEN[:-1]}",
        f"Token {METRICS_TOKEN}",
        METRICS_TOKEN,
        "Bearer ",
    ],
)
def test_with_a_metrics_token_a_scrape_without_it_gets_401_and_no_metrics(
    client, settings, authorization
):
    settings.METRICS_TOKEN = METRICS_TOKEN
    headers = {} if authorization is None else {"Authorization": authorization}

    response = client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"inventory_" not in response.content and b"django_" not in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_with_a_metrics_token_a_scrape_with_it_gets_the_metrics(client, settings, scheme):
    settings.METRICS_TOKEN = METRICS_TOKEN

    response = client.get("/metrics", headers={"Authorization": f"{scheme} {METRICS_TOKEN}"})

    assert response.status_code == 200
    assert response["Content-Type"] in PROMETHEUS_TEXT
    assert b"inventory_cache_events_total" in response.content


@pytest.mark.django_db
def test_without_a_metrics_token_the_metrics_are_open(client, settings):
    settings.METRICS_TOKEN = ""

    assert read_metrics(client)  # 200, parsed


@pytest.mark.django_db
def test_metrics_count_requests_latencies_and_stock_operations_by_outcome(client):
    store, product = StoreFactory(code="berlin-01"), ProductFactory(sku="TEE")
    clerk = MembershipFactory(store=store, role=Role.CLERK).user
    stock_receive(store=store, product=product, quantity=1)
    purchase = "/api/v1/stores/berlin-01/stock/TEE/purchase/"
    before = read_metrics(client)

    sold = api_client(clerk).post(purchase, {"quantity": 1}, format="json")
    refused = api_client(clerk).post(purchase, {"quantity": 1}, format="json")
    after = read_metrics(client)

    assert sold.status_code == 200
    assert assert_error(refused, 409, "insufficient_stock")["available"] == 0

    def increase(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    operations = "inventory_stock_operations_total"
    assert increase(operations, operation="purchase", outcome="ok") == 1
    assert increase(operations, operation="purchase", outcome="insufficient_stock") == 1
    view = {"view": "stock-purchase", "method": "POST"}
    assert increase("django_http_requests_latency_seconds_by_view_method_count", **view) == 2
    assert (
        increase(
            "django_http_requests_total_by_view_transport_method_total", **view, transport="http"
        )
        == 2
    )
    responses = "django_http_responses_total_by_status_view_method_total"
    assert increase(responses, status="200", **view) == 1
    assert increase(responses, status="409", **view) == 1
    latency = "django_http_requests_latency_seconds_by_view_method_bucket"
    assert increase(latency, **view, le="+Inf") == 2


@pytest.mark.django_db
def test_without_replicas_the_replica_gauges_have_no_series(client, settings):
    """With replicas, tests/test_metrics_processes.py scrapes a real bin/run web."""
    settings.REPLICA_DATABASES = []

    metrics = read_metrics(client)

    assert by_label(metrics, "inventory_replica_up", "replica") == {}
    assert by_label(metrics, "inventory_replica_lag_seconds", "replica") == {}


# --- errors under /api/ are JSON --------------------------------------------------------


@pytest.mark.django_db
def test_an_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/no-such-thing/")

    assert assert_error(response, 404, "not_found") == {"detail": "Not found.", "code": "not_found"}


@pytest.mark.django_db
def test_an_unknown_path_outside_the_api_stays_an_html_404(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_a_method_the_endpoint_does_not_have_is_a_json_405(django_user_model):
    user = django_user_model.objects.create_user("alice")

    response = api_client(user).delete("/api/v1/stores/")

    assert assert_error(response, 405, "method_not_allowed") == {
        "detail": 'Method "DELETE" not allowed.',
        "code": "method_not_allowed",
    }
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"


@pytest.mark.django_db
def test_get_on_the_token_endpoint_is_a_json_405(client):
    response = api_client().get("/api/v1/auth/token/")

    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST, OPTIONS"


@pytest.mark.django_db
def test_anonymous_requests_get_a_json_401_with_www_authenticate():
    response = api_client().get("/api/v1/stores/")

    assert assert_error(response, 401, "not_authenticated") == {
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
    }
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_a_bad_token_gets_a_json_401_with_www_authenticate():
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = client.get("/api/v1/stores/")

    assert assert_error(response, 401, "authentication_failed") == {
        "detail": "Invalid token.",
        "code": "authentication_failed",
    }
    assert response["WWW-Authenticate"] == "Token"


HANDLERS = [
    (errors.json_bad_request, 400, "bad_request", "Bad request."),
    (
        errors.json_permission_denied,
        403,
        "permission_denied",
        "You do not have permission to do this.",
    ),
    (errors.json_not_found, 404, "not_found", "Not found."),
    (errors.json_server_error, 500, "server_error", "The server failed to answer; try again."),
]


@pytest.mark.parametrize(("handler", "status", "code", "detail"), HANDLERS)
def test_django_error_handlers_answer_json_under_the_api(handler, status, code, detail):
    """handler400/403/404/500: what Django answers when an error escapes DRF."""
    request = RequestFactory().post("/api/v1/stores/berlin-01/stock/TEE/purchase/")

    response = handler(request) if handler is errors.json_server_error else handler(request, None)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"detail": detail, "code": code}


@pytest.mark.parametrize(("handler", "status", "code", "detail"), HANDLERS)
def test_django_error_handlers_answer_html_outside_the_api(handler, status, code, detail):
    request = RequestFactory().get("/admin/stock/")

    response = handler(request) if handler is errors.json_server_error else handler(request, None)

    assert response.status_code == status
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert b"<h1>" in response.content
