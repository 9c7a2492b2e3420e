"""The store dashboard in a real browser, changing while it is watched.

``seed_demo`` fills the test database; ``bin/run web`` serves it. Headless Chromium logs
in as the demo manager and opens berlin-01's dashboard; the test then sells every
available unit of a level and receives them back through the API, and reads, without a
reload, the row's available units, its badge (OUT, then none) and the header's counts
follow. Screenshots of each step go to ``artifacts/browser/`` (or
``$BROWSER_SCREENSHOT_DIR``).

The ways for the events to reach the page, one test each:

- ``polling``: no events process: the page's EventSource is refused and it polls the
  events API (``DASHBOARD_POLL_SECONDS``, 0.5 s here); and, without Redis (as under
  ``make run``), it polls from the start, asking for no stream;
- ``stream``: ``bin/run events`` serves the live stream and a relay gives both processes
  one origin, as a load balancer does (``same_origin.py``); needs Redis (REDIS_URL);
- ``stream`` from another origin: the page opens the stream of ``bin/run events`` on a
  port of its own (``EVENTS_STREAM_URL``), which allows the page's origin
  (``EVENTS_STREAM_ALLOWED_ORIGINS``), as docker-compose runs them; needs Redis.

Each skips, saying why, while what it needs is not there yet: the event log writer (no
event after ``seed_demo``'s changes), the events API, ``bin/run events``.
"""

import json
import urllib.error
import urllib.request
import uuid

import pytest

from events.models import StockEvent
from tests.processes import free_port

from .driving import (
    BROWSER_TEST_MARKS,
    WAIT,
    By,
    WebDriverWait,
    click_and_wait,
    screenshot,
)
from .same_origin import SameOrigin

pytestmark = BROWSER_TEST_MARKS

STORE = "berlin-01"


class Api:
    """The demo manager's calls to the REST API of the web process, by token."""

    def __init__(self, web: str, password: str):
        self.web = web
        self.token = self.call(
            "POST", "/api/v1/auth/token/", username="manager", password=password
        )["token"]

    def call(self, method: str, path: str, **body) -> dict:
        request = urllib.request.Request(
            self.web + path,
            method=method,
            data=json.dumps(body).encode() if body else None,
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Token {self.token}"} if hasattr(self, "token") else {}),
            },
        )
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return json.loads(response.read())

    def stock(self, sku: str, operation: str, quantity: int) -> dict:
        return self.call(
            "POST", f"/api/v1/stores/{STORE}/stock/{sku}/{operation}/", quantity=quantity
        )


@pytest.fixture
def events_origin(deployment):
    """The web process and ``bin/run events`` on one origin; its URL."""
    if not deployment.env.get("REDIS_URL"):
        pytest.skip("the live stream needs Redis: run with REDIS_URL set")
    web_port = int(deployment.web_url.rsplit(":", 1)[1])
    events_port = deployment.start_serving("events", "events")
    with SameOrigin(web_port, events_port) as relay:
        yield relay.url


@pytest.fixture
def cross_origin(deployment):
    """Another web process whose dashboard opens the stream of ``bin/run events`` on a
    port of its own, which answers CORS for that web's origin; the web's URL."""
    if not deployment.env.get("REDIS_URL"):
        pytest.skip("the live stream needs Redis: run with REDIS_URL set")
    web_port = free_port()
    events_port = deployment.start_serving(
        "events", "events", EVENTS_STREAM_ALLOWED_ORIGINS=f"http://127.0.0.1:{web_port}"
    )
    deployment.start_web(
        "web-of-another-origin", port=web_port, EVENTS_STREAM_URL=f"http://127.0.0.1:{events_port}"
    )
    return f"http://127.0.0.1:{web_port}"


def test_the_dashboard_follows_the_events_api_without_a_stream(browser, web, demo_manager_password):
    watch(browser, web, web, demo_manager_password, mode="polling")


def test_without_redis_the_dashboard_polls_from_the_start(
    browser, web, deployment, demo_manager_password
):
    web_without_redis = deployment.start_web("web-without-redis", REDIS_URL="")
    watch(
        browser, f"http://127.0.0.1:{web_without_redis}", web, demo_manager_password, mode="polling"
    )

    # gunicorn's access log: it polled the events API and never asked for a stream.
    served = (deployment.directory / "web-without-redis.log").read_text()
    assert '"path": "/api/v1/stores/berlin-01/events/"' in served
    assert "/events/stream/" not in served


def test_the_dashboard_follows_the_live_stream(browser, web, events_origin, demo_manager_password):
    watch(browser, events_origin, web, demo_manager_password, mode="stream")


def test_the_dashboard_follows_the_live_stream_of_another_origin(
    browser, web, cross_origin, demo_manager_password
):
    watch(browser, cross_origin, web, demo_manager_password, mode="stream")


def watch(driver, origin: str, web: str, password: str, *, mode: str) -> None:
    # seed_demo's stock changes wrote the store's first events, which the page resumes after.
    assert StockEvent.objects.filter(store__code=STORE).exists()
    api = Api(web, password)
    try:
        watch_the_changes(driver, origin, api, password, mode)
    except BaseException as error:
        if not isinstance(error, pytest.skip.Exception):
            screenshot(driver, f"dashboard-{mode}-failure.png")
        raise


def watch_the_changes(driver, origin: str, api: Api, password: str, mode: str) -> None:
    # Log in through the admin, which comes back to the dashboard.
    driver.get(f"{origin}/admin/login/?next=/stores/{STORE}/")
    driver.find_element(By.ID, "id_username").send_keys("manager")
    driver.find_element(By.ID, "id_password").send_keys(password)
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "#login-form [type=submit]"))
    assert driver.current_url == f"{origin}/stores/{STORE}/", driver.current_url
    wait_for(driver, lambda: live_mode(driver) in {"polling", "stream"}, "live updates")
    assert live_mode(driver) == mode
    # A mark that a reload would wipe out, and every mode the page passes through from
    # here on: a stream that failed and fell back to polling, even for a moment, shows.
    page = uuid.uuid4().hex
    driver.execute_script("window.dashboardPageMark = arguments[0]", page)
    driver.execute_script(MODES_SEEN)

    sku, available, reorder_point = a_healthy_row(driver)
    before = header(driver)
    screenshot(driver, f"dashboard-{mode}-before.png")

    # Sell every available unit: the row runs out.
    api.stock(sku, "purchase", available)
    wait_for(driver, lambda: row(driver, sku)["available"] == "0", f"{sku} sold out")
    wait_for(
        driver, lambda: header(driver)["changes-today"] == before["changes-today"] + 1, "count"
    )
    assert row(driver, sku)["status"] == "OUT"
    assert header(driver) == {
        "low": before["low"] + 1,
        "out": before["out"] + 1,
        "changes-today": before["changes-today"] + 1,
    }
    wait_for(driver, lambda: latest_movement(driver)[:2] == (sku, "Sale"), "the sale listed")
    assert latest_movement(driver)[2] == "manager"
    screenshot(driver, f"dashboard-{mode}-sold-out.png")

    # Receive one more than the reorder point: healthy again, no badge.
    api.stock(sku, "receive", reorder_point + 1)
    expected = str(reorder_point + 1)
    wait_for(driver, lambda: row(driver, sku)["available"] == expected, f"{sku} received")
    wait_for(
        driver, lambda: header(driver)["changes-today"] == before["changes-today"] + 2, "count"
    )
    assert row(driver, sku)["status"] == ""
    assert header(driver) == {**before, "changes-today": before["changes-today"] + 2}
    wait_for(driver, lambda: latest_movement(driver)[:2] == (sku, "Receive"), "the receipt listed")
    screenshot(driver, f"dashboard-{mode}-received.png")

    # Raise the reorder point to what is available: low, and no stock change today.
    api.call("PATCH", f"/api/v1/stores/{STORE}/stock/{sku}/", reorder_point=reorder_point + 1)
    wait_for(driver, lambda: row(driver, sku)["status"] == "LOW", f"{sku} low by its point")
    assert row(driver, sku)["reorder-point"] == expected
    wait_for(driver, lambda: header(driver)["low"] == before["low"] + 1, "the low count")
    assert header(driver) == {
        **before,
        "low": before["low"] + 1,
        "changes-today": before["changes-today"] + 2,
    }
    screenshot(driver, f"dashboard-{mode}-reorder-point.png")

    assert driver.execute_script("return window.dashboardPageMark") == page, "the page reloaded"
    assert driver.execute_script("return window.dashboardModesSeen") == [mode]


MODES_SEEN = """
    const status = document.getElementById("live-status");
    window.dashboardModesSeen = [status.dataset.mode];
    new MutationObserver(function () {
        const seen = window.dashboardModesSeen;
        if (seen[seen.length - 1] !== status.dataset.mode) seen.push(status.dataset.mode);
    }).observe(status, {attributes: true, attributeFilter: ["data-mode"]});
"""


def wait_for(driver, condition, what: str) -> None:
    WebDriverWait(driver, WAIT).until(
        lambda _: condition(), f"waited {WAIT} s for {what}: {status_text(driver)}"
    )


def live_mode(driver) -> str:
    return driver.find_element(By.ID, "live-status").get_attribute("data-mode")


def status_text(driver) -> str:
    return driver.find_element(By.ID, "live-status").text


def header(driver) -> dict[str, int]:
    return {
        name: int(driver.find_element(By.ID, f"count-{name}").text)
        for name in ("low", "out", "changes-today")
    }


def row(driver, sku: str) -> dict[str, str]:
    element = driver.find_element(By.CSS_SELECTOR, f"#levels tr[data-sku='{sku}']")
    return {
        name: element.find_element(By.CSS_SELECTOR, f".{name}").text.strip()
        for name in ("available", "reorder-point", "status")
    }


def a_healthy_row(driver) -> tuple[str, int, int]:
    """The first level above its reorder point, nothing reserved: (sku, available,
    reorder point)."""
    for element in driver.find_elements(By.CSS_SELECTOR, "#levels tbody tr[data-sku]"):
        sku = element.get_attribute("data-sku")
        cells = row(driver, sku)
        reserved = element.find_element(By.CSS_SELECTOR, ".reserved").text
        available, reorder_point = int(cells["available"]), int(cells["reorder-point"])
        if available > reorder_point and reserved == "0" and cells["status"] == "":
            return sku, available, reorder_point
    raise AssertionError("the demo store has no healthy level to sell out")


def latest_movement(driver) -> tuple[str, str, str]:
    """(sku, kind, who) of the first movement listed, read in one script: the list is
    rebuilt after each event, so its elements may be replaced between two reads."""
    return tuple(
        driver.execute_script(
            "const row = document.querySelector('#movements tbody tr');"
            "return ['sku', 'kind', 'who'].map("
            "  name => (row.querySelector('.' + name) || {textContent: ''}).textContent.trim());"
        )
    )
