"""The admin in a real browser: headless Chromium, driven by Selenium, against the
deployed web process.

``bin/run web`` (gunicorn, DEBUG off, static files collected and served by WhiteNoise)
runs on pytest's PostgreSQL test database. Chromium logs in as a store manager, opens
the stock levels, adjusts one by -3 (damaged) through the admin's Adjust form and reads
the new level back on the change page and in the list; the database agrees, and the
final page is saved as a PNG (``artifacts/browser/`` or ``$BROWSER_SCREENSHOT_DIR``).

Debian's ``chromium`` and ``chromium-driver`` packages provide the browser and its
driver; both paths are given to Selenium, so Selenium Manager never downloads anything.
Without them the test is skipped, unless ``REQUIRE_BROWSER=1`` (set by ``.ci/run``),
which turns the missing browser into a failure.
"""

import os
import re
import uuid
from pathlib import Path

import pytest
from django.conf import Settings

from stock.models import AdjustmentReason, Movement, MovementKind, StockLevel
from stock.services import stock_receive
from stores.models import Role
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory
from tests.processes import ROOT, ProjectProcesses, project_env, run, url_of_the_test_database

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.wait import WebDriverWait
except ImportError:  # pragma: no cover - requirements-dev.txt pins selenium
    webdriver = None

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER", "").lower() in {"1", "true", "yes"}
SCREENSHOT_DIR = Path(os.environ.get("BROWSER_SCREENSHOT_DIR") or ROOT / "artifacts" / "browser")
WAIT = 15  # seconds for a page or an element


def missing_browser() -> list[str]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if webdriver is None:
        missing.append("the selenium package (pip install -r requirements-dev.txt)")
    return missing


MISSING = missing_browser()
MISSING_REASON = (
    f"needs headless Chromium: {', '.join(MISSING)} missing "
    "(apt-get install chromium chromium-driver; REQUIRE_BROWSER=1 fails instead of skipping)"
)

pytestmark = [
    pytest.mark.postgresql("bin/run web, driven by the browser, shares the test database"),
    pytest.mark.skipif(bool(MISSING) and not REQUIRE_BROWSER, reason=MISSING_REASON),
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "browser test password 1"


@pytest.fixture
def web(transactional_db, tmp_path):
    """``bin/run web`` on the test database, its static files collected first; yields
    the base URL. Stopped at teardown, before the test database is flushed."""
    static_root = tmp_path / "static"
    static_root.mkdir()
    env = project_env(
        DATABASE_URL=url_of_the_test_database(),
        DEBUG="false",
        SECRET_KEY="admin-in-chromium-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1",
        CACHE_KEY_PREFIX=f"admin-in-chromium-{uuid.uuid4().hex}",
        # No worker runs: the audit relay runs in the web process, no message is left
        # in a broker.
        CELERY_TASK_ALWAYS_EAGER="true",
        WEB_CONCURRENCY="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        STATIC_ROOT=str(static_root),
    )
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]  # the cache, as in the services mode
    collected = run(["bin/run", "collectstatic"], env)
    assert collected.returncode == 0, collected.stdout[-2000:] + collected.stderr[-2000:]
    processes = ProjectProcesses(env, tmp_path)
    try:
        port = processes.start_web()
        yield f"http://127.0.0.1:{port}"
    finally:
        processes.stop_all()


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium through chromedriver, both Debian's."""
    if MISSING:
        pytest.fail(f"REQUIRE_BROWSER is set, but {MISSING_REASON}", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    service = Service(
        executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log")
    )
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def manager(settings):
    """A store's manager whose password the web process can check: the tests hash with
    MD5 for speed, which the site's own hashers do not accept."""
    settings.PASSWORD_HASHERS = Settings(os.environ["DJANGO_SETTINGS_MODULE"]).PASSWORD_HASHERS
    store = StoreFactory(code="browser-01", name="Browser Store")
    user = UserFactory(username="browser-manager", password=PASSWORD)
    MembershipFactory(user=user, store=store, role=Role.MANAGER)
    return user, store


def screenshot(driver, name: str) -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / name
    assert driver.save_screenshot(str(path)), f"no screenshot written to {path}"
    print(f"screenshot: {path}")
    return path


def text_of(driver, selector: str) -> str:
    return (
        WebDriverWait(driver, WAIT)
        .until(expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, selector)))
        .text.strip()
    )


def click_and_wait(driver, element) -> None:
    """Click a link or button and wait until the next page has loaded."""
    element.click()
    WebDriverWait(driver, WAIT).until(expected_conditions.staleness_of(element))
    WebDriverWait(driver, WAIT).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def test_a_manager_adjusts_a_stock_level_in_chromium(browser, web, manager):
    user, store = manager
    product = ProductFactory(sku="BROWSER-TEE", name="Browser tee")
    level = stock_receive(store=store, product=product, quantity=10)
    try:
        drive_the_adjustment(browser, web, level)
    except BaseException:
        screenshot(browser, "admin-adjust-failure.png")
        raise

    level.refresh_from_db()
    assert (level.on_hand, level.reserved) == (7, 0)
    adjustment = Movement.objects.get(store=store, product=product, kind=MovementKind.ADJUST)
    assert adjustment.delta_on_hand == -3
    assert adjustment.on_hand_after == 7
    assert adjustment.reason == AdjustmentReason.DAMAGED
    assert adjustment.actor_id == user.pk
    assert StockLevel.objects.get(store=store, product=product).on_hand == 7


def drive_the_adjustment(driver, web: str, level: StockLevel) -> None:
    # The admin's CSS is served: the page is styled, not bare HTML.
    driver.get(f"{web}/admin/login/")
    assert driver.execute_script(
        "return getComputedStyle(document.getElementById('header')).display"
    ), "no #header on the login page"
    stylesheets = driver.execute_script(
        "return Array.from(document.styleSheets).filter(s => s.cssRules.length > 0).length"
    )
    assert stylesheets > 0, "the admin's stylesheets did not load"

    driver.find_element(By.ID, "id_username").send_keys("browser-manager")
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "#login-form [type=submit]"))
    assert "/admin/login/" not in driver.current_url, text_of(driver, "#content")
    assert "browser-manager" in text_of(driver, "#user-tools").lower()

    # Home -> Stock levels -> the level -> Adjust.
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "a[href$='/stock/stocklevel/']"))
    row = driver.find_element(
        By.XPATH, "//table[@id='result_list']//tr[.//td[text()='BROWSER-TEE']]"
    )
    assert row.find_element(By.CSS_SELECTOR, "td.field-on_hand").text == "10"
    click_and_wait(driver, row.find_element(By.CSS_SELECTOR, "th a"))
    assert driver.current_url.endswith(f"/admin/stock/stocklevel/{level.pk}/change/")
    # The object-tools links are upper-cased by CSS: match the DOM text, not the rendered.
    adjust = "//ul[contains(@class, 'object-tools')]//a[normalize-space()='Adjust']"
    click_and_wait(driver, driver.find_element(By.XPATH, adjust))
    assert driver.current_url.endswith(f"/admin/stock/stocklevel/{level.pk}/adjust/")
    assert text_of(driver, "#level-on-hand") == "10"

    driver.find_element(By.ID, "id_delta").send_keys("-3")
    Select(driver.find_element(By.ID, "id_reason")).select_by_value(AdjustmentReason.DAMAGED)
    driver.find_element(By.ID, "id_note").send_keys("Dropped in the browser test")
    click_and_wait(
        driver, driver.find_element(By.CSS_SELECTOR, "#stock-operation-form [type=submit]")
    )

    # Back on the change page: the message and the level say 7.
    assert driver.current_url.endswith(f"/admin/stock/stocklevel/{level.pk}/change/")
    assert text_of(driver, ".messagelist .success") == ("Adjusted by -3 (damaged); on hand now 7.")
    assert text_of(driver, ".field-on_hand .readonly") == "7"
    screenshot(driver, "admin-adjust.png")

    # The list shows the same.
    click_and_wait(
        driver, driver.find_element(By.CSS_SELECTOR, ".breadcrumbs a[href$='/stock/stocklevel/']")
    )
    row = driver.find_element(
        By.XPATH, "//table[@id='result_list']//tr[.//td[text()='BROWSER-TEE']]"
    )
    cells = {
        name: row.find_element(By.CSS_SELECTOR, f"td.field-{name}").text
        for name in ("sku", "on_hand", "reserved", "available")
    }
    assert cells == {"sku": "BROWSER-TEE", "on_hand": "7", "reserved": "0", "available": "7"}
    assert re.search(r"browser-01", row.text, re.IGNORECASE), row.text
    screenshot(driver, "admin-stock-levels.png")
