"""The newcomer's path in a real browser, on the demo data ``make run`` loads.

``seed_demo`` fills the test database and prints the demo logins; ``bin/run web`` serves
it. Headless Chromium opens the home page, logs in there as the demo manager, opens
berlin-01's low-stock page (it must list something), downloads the store's stock as CSV
from the admin's stock list, uploads it again with one count changed and reads the new
count in the list; the database agrees. Screenshots of each step go to
``artifacts/browser/`` (or ``$BROWSER_SCREENSHOT_DIR``).
"""

import csv
import io
import time

from stock.models import Movement, MovementKind, StockLevel

from .driving import BROWSER_TEST_MARKS, WAIT, By, click_and_wait, screenshot, text_of

pytestmark = BROWSER_TEST_MARKS

STORE = "berlin-01"
COUNTED = "TEE-RED"  # the row whose count the manager changes in the CSV file


def test_the_newcomer_path_in_chromium(browser, web, demo_manager_password):
    try:
        counted = walk_the_newcomer_path(browser, web, demo_manager_password)
    except BaseException:
        screenshot(browser, "newcomer-failure.png")
        raise

    assert StockLevel.objects.get(store__code=STORE, product__sku=COUNTED).on_hand == counted
    count = Movement.objects.get(store__code=STORE, product__sku=COUNTED, kind=MovementKind.SET)
    assert (count.on_hand_after, count.actor.username) == (counted, "manager")


def walk_the_newcomer_path(driver, web: str, password: str) -> int:
    """Walk it; returns the count the uploaded file set."""
    # The home page, logged out: it offers the login, which comes back to it.
    driver.get(f"{web}/")
    assert text_of(driver, "#content h1") == "Inventory"
    click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Log in"))
    driver.find_element(By.ID, "id_username").send_keys("manager")
    driver.find_element(By.ID, "id_password").send_keys(password)
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "#login-form [type=submit]"))
    assert driver.current_url == f"{web}/", driver.current_url
    assert text_of(driver, "#content h1") == "Welcome, manager"
    screenshot(driver, "newcomer-home.png")

    # The store's low-stock page lists what to reorder.
    row = driver.find_element(By.CSS_SELECTOR, f"#stores tr[data-store='{STORE}']")
    click_and_wait(driver, row.find_element(By.LINK_TEXT, "low stock"))
    assert driver.current_url == f"{web}/stores/{STORE}/low-stock/"
    low = driver.find_elements(By.CSS_SELECTOR, "#low-stock tbody tr")
    assert low, text_of(driver, "#content")
    screenshot(driver, "newcomer-low-stock.png")

    # The admin's stock list of the store: export it as CSV.
    driver.get(f"{web}/admin/stock/stocklevel/?store={STORE}")
    before = on_hand_in_the_list(driver, COUNTED)
    object_tool("Export CSV", driver).click()
    exported = downloaded_csv(driver)
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert {row["store"] for row in rows} == {STORE}
    assert [int(row["on_hand"]) for row in rows if row["sku"] == COUNTED] == [before]

    # Upload it again with one count changed: the list shows the new count.
    counted = before + 7
    upload = driver.downloads / "counted.csv"
    upload.write_text(
        exported.replace(f"{STORE},{COUNTED},{before},", f"{STORE},{COUNTED},{counted},")
    )
    click_and_wait(driver, object_tool("Import CSV", driver))
    driver.find_element(By.CSS_SELECTOR, "#stock-import-form input[type=file]").send_keys(
        str(upload)
    )
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "#stock-import-form [type=submit]"))
    assert "/admin/stock/stocklevel/" in driver.current_url, text_of(driver, "#content")
    assert text_of(driver, ".messagelist .success")
    assert on_hand_in_the_list(driver, COUNTED) == counted
    screenshot(driver, "newcomer-after-upload.png")
    return counted


def object_tool(name: str, driver):
    """A button above the list; CSS upper-cases them, so the DOM text is matched."""
    return driver.find_element(
        By.XPATH, f"//ul[contains(@class, 'object-tools')]//a[normalize-space()='{name}']"
    )


def on_hand_in_the_list(driver, sku: str) -> int:
    row = driver.find_element(By.XPATH, f"//table[@id='result_list']//tr[.//td[text()='{sku}']]")
    return int(row.find_element(By.CSS_SELECTOR, "td.field-on_hand").text)


def downloaded_csv(driver) -> str:
    """The text of the one CSV file the browser has downloaded, once it is complete."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        done = list(driver.downloads.glob("stock-*.csv"))
        if done and not list(driver.downloads.glob("*.crdownload")):
            assert len(done) == 1, done
            return done[0].read_text()
        time.sleep(0.2)
    raise AssertionError(f"no CSV file was downloaded: {list(driver.downloads.iterdir())}")
