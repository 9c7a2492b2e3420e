"""Headless Chromium for the browser tests: where it is, whether it is there, the marks
every test module carries, the Selenium names they use (imported here once, ``None``
without the package) and the few moves every test makes (wait for a page, read an
element, keep a screenshot)."""

import os
from pathlib import Path

import pytest

from tests.processes import ROOT

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.wait import WebDriverWait
except ImportError:  # pragma: no cover - requirements-dev.txt pins selenium
    webdriver = Service = By = expected_conditions = Select = WebDriverWait = None
    WebDriverException = Exception

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

# Every browser test module's marks (``pytestmark = BROWSER_TEST_MARKS``): the web process
# it drives reads pytest's test database, so each test commits; without Chromium it is
# skipped, unless REQUIRE_BROWSER is set (then the ``browser`` fixture fails, saying why).
BROWSER_TEST_MARKS = [
    pytest.mark.postgresql("bin/run web, driven by the browser, shares the test database"),
    pytest.mark.skipif(bool(MISSING) and not REQUIRE_BROWSER, reason=MISSING_REASON),
    pytest.mark.django_db(transaction=True),
]


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
    """Click a link or button and wait until the next page has loaded: a new document,
    told by a mark left on the old one's window, and complete.

    Not Selenium's ``staleness_of`` the clicked element: asked while the page goes, the
    chromedriver of Chromium 156 may answer "Node with given id does not belong to the
    document", an error of no stale kind, which that wait raises instead of returning.
    Errors while the page is between documents are retried until ``WAIT``."""
    driver.execute_script("window.leftByClickAndWait = true")
    element.click()
    WebDriverWait(driver, WAIT, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return !window.leftByClickAndWait && document.readyState === 'complete'"
        ),
        message=f"no new page loaded {WAIT} s after the click",
    )
