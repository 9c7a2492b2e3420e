"""The API is browsable with a session login, and documents itself in OpenAPI 3."""

import io

import pytest
import yaml
from django.core.management import call_command

from tests.factories import StaffFactory, StoreFactory

DOCUMENTED = {
    "/api/v1/auth/token/": {"post"},
    "/api/v1/stores/": {"get", "post"},
    "/api/v1/stores/{code}/": {"get", "patch"},
    "/api/v1/stores/{code}/members/": {"get", "post"},
    "/api/v1/stores/{code}/members/{username}/": {"delete"},
    "/api/v1/products/": {"get", "post"},
    "/api/v1/products/{sku}/": {"get", "patch"},
    "/api/v1/products/{sku}/availability/": {"get"},
    "/api/v1/stores/{code}/stock/": {"get"},
    "/api/v1/stores/{code}/stock/{sku}/": {"get", "patch"},
    "/api/v1/stores/{code}/stock/{sku}/receive/": {"post"},
    "/api/v1/stores/{code}/stock/{sku}/adjust/": {"post"},
    "/api/v1/stores/{code}/stock/{sku}/set/": {"post"},
    "/api/v1/stores/{code}/stock/{sku}/purchase/": {"post"},
    "/api/v1/stores/{code}/stock/{sku}/gate/": {"get", "put"},
    "/api/v1/stores/{code}/transfers/": {"post"},
    "/api/v1/stores/{code}/stock/bulk/": {"post"},
    "/api/v1/jobs/{job_id}/": {"get"},
    "/api/v1/stores/{code}/movements/": {"get"},
    "/api/v1/stores/{code}/events/": {"get"},
    "/api/v1/stores/{code}/events/stream/": {"get"},
    "/api/v1/stores/{code}/reservations/": {"get", "post"},
    "/api/v1/stores/{code}/reservations/{reservation_id}/": {"get"},
    "/api/v1/stores/{code}/reservations/{reservation_id}/commit/": {"post"},
    "/api/v1/stores/{code}/reservations/{reservation_id}/release/": {"post"},
    "/api/v1/audit/": {"get"},
    "/api/v1/stores/{code}/webhooks/": {"get", "post"},
    "/api/v1/stores/{code}/webhooks/{webhook_id}/": {"get", "patch", "delete"},
    "/api/v1/stores/{code}/webhooks/{webhook_id}/rotate-secret/": {"post"},
    "/api/v1/stores/{code}/webhooks/{webhook_id}/deliveries/": {"get"},
    "/api/v1/stores/{code}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver/": {"post"},
}
# Actions whose POST takes no body.
BODILESS_ACTIONS = ("/commit/", "/release/", "/rotate-secret/", "/redeliver/")
# The live stream: a plain async view of the events process (``events.schema``).
STREAM = "/api/v1/stores/{code}/events/stream/"


@pytest.fixture
def schema(client, db):
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_the_schema_documents_every_endpoint(schema):
    paths = {
        path: {method for method in operations if method != "parameters"}
        for path, operations in schema["paths"].items()
    }
    assert schema["openapi"].startswith("3.")
    assert paths == DOCUMENTED


def test_every_operation_documents_its_body_and_its_errors(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert {"401", "429"} <= statuses or path == "/api/v1/auth/token/", (path, method)
            if method in {"post", "patch", "put"} and not path.endswith(BODILESS_ACTIONS):
                assert "requestBody" in operation, (path, method)
                assert {"400", "413", "415"} <= statuses, (path, method)
            if "{code}" in path or "{sku}" in path:
                assert "404" in statuses, (path, method)
    purchase = schema["paths"]["/api/v1/stores/{code}/stock/{sku}/purchase/"]["post"]
    assert {"200", "400", "401", "403", "404", "409", "413", "415", "422", "429"} == set(
        purchase["responses"]
    )
    detail = schema["paths"]["/api/v1/stores/{code}/stock/{sku}/"]["get"]
    assert "304" in detail["responses"]
    assert "If-None-Match" in {p["name"] for p in detail["parameters"]}
    set_count = schema["paths"]["/api/v1/stores/{code}/stock/{sku}/set/"]["post"]
    assert "412" in set_count["responses"]
    assert {p["name"] for p in set_count["parameters"]} >= {"If-Match", "Idempotency-Key"}


def test_a_bulk_refusal_lists_the_bad_items_and_an_accepted_job_says_where_it_is(schema):
    """Unlike every other 400, a bulk job's items that cannot be applied come as a list."""
    bulk = schema["paths"]["/api/v1/stores/{code}/stock/bulk/"]["post"]
    components = schema["components"]["schemas"]

    refusal = bulk["responses"]["400"]["content"]["application/json"]["schema"]
    shapes = components[refusal["$ref"].rsplit("/", 1)[1]]["oneOf"]
    errors = [
        components[shape["$ref"].rsplit("/", 1)[1]]["properties"]["errors"] for shape in shapes
    ]
    accepted = bulk["responses"]["202"]

    assert sorted(error["type"] for error in errors) == ["array", "object"]
    item = components["BulkItemError"]
    assert set(item["properties"]) == set(item["required"]) == {"index", "sku", "detail", "code"}
    assert set(accepted["headers"]) == {"Location"}
    assert "Idempotency-Key" in {p["name"] for p in bulk["parameters"]}
    assert set(bulk["responses"]) == {"202", "400", "401", "403", "404", "409", "413", "415",
                                      "422", "429"}  # fmt: skip
    job = schema["paths"]["/api/v1/jobs/{job_id}/"]["get"]
    assert set(job["responses"]) == {"200", "401", "404", "429"}
    assert set(components["BulkJob"]["properties"]) == {
        "id", "store", "status", "total", "applied", "failed", "errors", "created_at",
        "finished_at",
    }  # fmt: skip


def test_the_live_stream_is_documented_as_server_sent_events(schema):
    stream = schema["paths"][STREAM]["get"]
    components = schema["components"]["schemas"]

    parameters = {(p["in"], p["name"]): p["schema"] for p in stream["parameters"]}
    assert parameters == {
        ("path", "code"): {"type": "string"},
        ("query", "after"): {"type": "integer", "minimum": 0},
        ("header", "Last-Event-ID"): {"type": "integer", "minimum": 0},
    }
    assert set(stream["responses"]) == {"200", "400", "401", "403", "404", "429", "503"}
    events = stream["responses"]["200"]["content"]
    assert list(events) == ["text/event-stream"]
    assert events["text/event-stream"]["schema"] == {"type": "string"}
    assert (
        "id: 42\nevent: stock.low\n" in events["text/event-stream"]["examples"]["Events"]["value"]
    )
    for status in ("400", "401", "403", "404", "429", "503"):
        error = stream["responses"][status]["content"]["application/json"]["schema"]
        assert set(components[error["$ref"].rsplit("/", 1)[1]]["properties"]) == {
            "detail", "code"
        }  # fmt: skip
    assert stream["security"] == [{"tokenAuth": []}, {"cookieAuth": []}]


def test_the_schema_validates_against_openapi_3_without_a_warning(tmp_path):
    """drf-spectacular's own check: the schema against the OpenAPI 3 JSON schema, and
    every view understood (a warning, such as an undocumented parameter, fails it)."""
    target = tmp_path / "schema.yml"

    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(target), stderr=io.StringIO()
    )

    assert STREAM in yaml.safe_load(target.read_text())["paths"]


def test_the_docs_page_renders_without_a_cdn(client, db):
    response = client.get("/api/v1/docs/")

    assert response.status_code == 200
    assert "swagger-ui" in response.text
    assert "cdn.jsdelivr" not in response.text


def test_the_api_is_browsable_with_a_session_login(client, db):
    StoreFactory(code="berlin-01")
    client.force_login(StaffFactory())

    response = client.get("/api/v1/stores/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "<h1>Stores</h1>" in response.text
    assert "berlin-01" in response.text
