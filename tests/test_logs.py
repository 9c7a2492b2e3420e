"""Every line written while a request runs carries its request id, user and store, as JSON
or as readable text; so do the lines of a task it runs eagerly; and the audit event the
request records names the same request id. (The worker's side, a task sent through the
broker: stock/tests/test_logs_worker.py.)"""

import io
import json
import logging
import secrets

import pytest
from django.conf import settings

from audit.models import AuditEvent
from inventory_site import logs
from inventory_site.log_filters import RefusalsWithoutTraceback
from stock.models import StockLevel
from stock.services import stock_receive
from stock.signals import stock_changed
from stores.models import Role, Store
from tests.api import api_client
from tests.factories import ProductFactory, StoreFactory, member
from tests.processes import bare_env, project_env, run

# The request's after-commit work (the stock signal, the audit relay) runs only when the
# transaction really commits.
pytestmark = pytest.mark.django_db(transaction=True)

WRITER = logging.getLogger("tests.logs")


@pytest.fixture
def captured():
    """``captured(log_format)``: a stream that receives every root logger line from now on,
    formatted as the LOGGING setting formats them for that LOG_FORMAT."""
    root, trace = logging.getLogger(), logging.getLogger("celery.app.trace")
    handlers, trace_level = [], trace.level
    # The embedded settings quiet the eager tasks' "succeeded" lines; here they are wanted.
    trace.setLevel(logging.INFO)

    def capture(log_format: str) -> io.StringIO:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logs.formatter(log_format))
        handler.addFilter(RefusalsWithoutTraceback())
        root.addHandler(handler)
        handlers.append(handler)
        return stream

    yield capture
    for handler in handlers:
        root.removeHandler(handler)
    trace.setLevel(trace_level)


@pytest.fixture
def a_line_per_stock_change():
    """Code running inside the request writes a line: a receiver of the stock signal,
    which the services send after their commit, still inside the view."""

    def write(sender, kind=None, levels=(), **kwargs):
        WRITER.info("stock changed")

    stock_changed.connect(write, dispatch_uid="tests.logs")
    yield
    stock_changed.disconnect(dispatch_uid="tests.logs")


@pytest.fixture
def berlin_clerk():
    """A clerk's API client for berlin-01, where one HOODIE-RED is in stock. Tests ask for
    it before ``captured``: the receipt writes no line into what they read."""
    store = StoreFactory(code="berlin-01")
    product = ProductFactory(sku="HOODIE-RED")
    stock_receive(store=store, product=product, quantity=1)
    return api_client(member("clerk", store, Role.CLERK))


def purchase(client, request_id: str):
    return client.post(
        "/api/v1/stores/berlin-01/stock/HOODIE-RED/purchase/",
        {"quantity": 1},
        format="json",
        HTTP_X_REQUEST_ID=request_id,
    )


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_of_a_request_is_json_with_its_request_id_user_and_store(
    berlin_clerk, captured, a_line_per_stock_change
):
    stream = captured("json")

    sold = purchase(berlin_clerk, "order-1001")
    sold_out = purchase(berlin_clerk, "order-1002")
    WRITER.info("after the requests")

    assert (sold.status_code, sold["X-Request-ID"]) == (200, "order-1001")
    assert (sold_out.status_code, sold_out["X-Request-ID"]) == (409, "order-1002")
    lines = json_lines(stream)
    fields = ("request_id", "user", "store")
    # A line from the view's after-commit work, and Django's line about the 409, written
    # after every middleware has returned.
    not_tasks = [line for line in lines if line["logger"] != "celery.app.trace"]
    assert [(line["logger"], line["event"]) for line in not_tasks] == [
        ("tests.logs", "stock changed"),
        ("django.request", "Conflict: /api/v1/stores/berlin-01/stock/HOODIE-RED/purchase/"),
        ("tests.logs", "after the requests"),
    ]
    during = [line for line in lines if line["event"] != "after the requests"]
    assert {tuple(line[field] for field in fields) for line in during} == {
        ("order-1001", "clerk", "berlin-01"),
        ("order-1002", "clerk", "berlin-01"),
    }
    conflict = next(line for line in lines if line["logger"] == "django.request")
    assert (conflict["request_id"], conflict["level"], conflict["status_code"]) == (
        "order-1002",
        "warning",
        409,
    )
    assert not set(fields) & set(lines[-1])  # outside any request: no request's fields
    for line in lines:
        assert {"event", "level", "logger", "timestamp"} <= set(line)


def test_a_task_run_eagerly_in_the_request_and_the_audit_event_carry_the_request_id(
    berlin_clerk, captured
):
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.skip("embedded mode only: tasks run in-process (services: test_logs_worker.py)")
    stream = captured("json")

    assert purchase(berlin_clerk, "order-2001").status_code == 200

    [relay] = [line for line in json_lines(stream) if line["logger"] == "celery.app.trace"]
    assert relay["task"] == "audit.tasks.relay_audit_outbox"
    assert relay["event"].startswith(
        f"Task audit.tasks.relay_audit_outbox[{relay['task_id']}] succeeded"
    )
    assert (relay["request_id"], relay["user"], relay["store"]) == (
        "order-2001",
        "clerk",
        "berlin-01",
    )
    [event] = AuditEvent.objects.filter(request_id="order-2001")
    berlin = Store.objects.get(code="berlin-01")
    assert (event.action, event.actor_username, event.store_id) == (
        "stock.sale",
        "clerk",
        berlin.pk,
    )


def test_an_anonymous_request_to_no_store_carries_its_id_with_no_user_and_no_store(captured):
    stream = captured("json")

    answer = api_client().get("/api/v1/products/", HTTP_X_REQUEST_ID="anonymous-1")

    assert answer.status_code == 401
    [line] = json_lines(stream)
    assert (line["event"], line["request_id"], line["user"], line["store"]) == (
        "Unauthorized: /api/v1/products/",
        "anonymous-1",
        None,
        None,
    )


def test_text_lines_are_readable_not_json_with_the_same_fields(
    berlin_clerk, captured, a_line_per_stock_change
):
    stream = captured("text")

    assert purchase(berlin_clerk, "order-3001").status_code == 200

    [line] = [line for line in stream.getvalue().splitlines() if "stock changed" in line]
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
    assert "[info     ] stock changed" in line and "[tests.logs]" in line
    assert line.endswith("request_id=order-3001 store=berlin-01 user=clerk")
    assert StockLevel.objects.get(store__code="berlin-01").on_hand == 0


# --- The setting, in a process of its own -------------------------------------------------

WRITE_A_LINE = [
    "python",
    "manage.py",
    "shell",
    "-c",
    "import logging; logging.getLogger('probe').warning('written')",
]
PRODUCTION = {"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50)}


@pytest.mark.parametrize(
    "variables, expected",
    [
        ({}, "text"),  # DEBUG on: a developer's console
        ({"LOG_FORMAT": "json"}, "json"),
        ({**PRODUCTION}, "json"),
        ({**PRODUCTION, "LOG_FORMAT": "text"}, "text"),
    ],
)
def test_log_format_defaults_to_text_with_debug_and_json_without(variables, expected):
    done = run(WRITE_A_LINE, project_env(**variables))

    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stderr.splitlines() if "written" in line]
    if expected == "json":
        assert {key: json.loads(line)[key] for key in ("event", "level", "logger")} == {
            "event": "written",
            "level": "warning",
            "logger": "probe",
        }
    else:
        assert "[warning  ] written" in line and "[probe]" in line


def test_an_unknown_log_format_refuses_to_start():
    done = run(WRITE_A_LINE, bare_env(DEBUG="true", LOG_FORMAT="xml"))

    assert done.returncode != 0
    assert "LOG_FORMAT must be one of json, text." in done.stderr
    assert "written" not in done.stderr
