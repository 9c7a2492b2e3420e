"""The admin in a real browser: headless Chromium, driven by Selenium, against the
deployed web process.

``bin/run web`` (gunicorn, DEBUG off, static files collected and served by WhiteNoise)
runs on pytest's PostgreSQL test database. Chromium logs in as a store manager, opens
the stock levels, adjusts one by -3 (damaged) through the admin's Adjust form and reads
the new level back on the change page and in the list; the database agrees, and the
final page is saved as a PNG (``artifacts/browser/`` or ``$BROWSER_SCREENSHOT_DIR``).
It also opens a webhook subscription whose receiver stopped answering, and reads until
when it is held and how far its events were sent.

Debian's ``chromium`` and ``chromium-driver`` packages provide the browser and its
driver; both paths are given to Selenium, so Selenium Manager never downloads anything.
Without them the test is skipped, unless ``REQUIRE_BROWSER=1`` (set by ``.ci/run``),
which turns the missing browser into a failure.
"""

import os
import re
from datetime import timedelta

import pytest
from django.conf import Settings
from django.utils import timezone

from events.webhooks.models import WebhookSubscription
from events.webhooks.services import subscription_create
from stock.models import AdjustmentReason, Movement, MovementKind, StockLevel
from stock.services import stock_receive
from stores.models import Role
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory

from .driving import BROWSER_TEST_MARKS, By, Select, click_and_wait, screenshot, text_of

pytestmark = BROWSER_TEST_MARKS

PASSWORD = "browser test password 1"


@pytest.fixture
def manager(settings):
    """A store's manager whose password the web process can check: the tests hash with
    MD5 for speed, which the site's own hashers do not accept."""
    settings.PASSWORD_HASHERS = Settings(os.environ["DJANGO_SETTINGS_MODULE"]).PASSWORD_HASHERS
    store = StoreFactory(code="browser-01", name="Browser Store")
    user = UserFactory(username="browser-manager", password=PASSWORD)
    MembershipFactory(user=user, store=store, role=Role.MANAGER)
    return user, store


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


def log_in(driver) -> None:
    """On the admin's login page: log in as the manager."""
    driver.find_element(By.ID, "id_username").send_keys("browser-manager")
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "#login-form [type=submit]"))
    assert "/admin/login/" not in driver.current_url, text_of(driver, "#content")
    assert "browser-manager" in text_of(driver, "#user-tools").lower()


def test_a_manager_sees_that_a_webhook_is_held_and_how_far_it_was_sent(browser, web, manager):
    """A subscription whose receiver stopped answering: its change page shows until
    when it is held and the last event sent, read-only."""
    _, store = manager
    subscription = subscription_create(
        store=store, url="https://hooks.example.com/stock", event_types=[], actor=None
    )
    held_until = timezone.now() + timedelta(seconds=45)
    WebhookSubscription.objects.filter(pk=subscription.pk).update(held_until=held_until, sent_seq=7)

    browser.get(
        f"{web}/admin/login/?next=/admin/events/webhooksubscription/{subscription.pk}/change/"
    )
    log_in(browser)
    try:
        assert browser.current_url.endswith(
            f"/admin/events/webhooksubscription/{subscription.pk}/change/"
        )
        assert text_of(browser, ".field-sent_seq .readonly") == "7"
        shown = text_of(browser, ".field-held_until .readonly")
        assert shown != "-" and str(timezone.localtime(held_until).year) in shown, shown
        assert not browser.find_elements(By.CSS_SELECTOR, "input[name=held_until]")
        screenshot(browser, "admin-webhook-held.png")
    except BaseException:
        screenshot(browser, "admin-webhook-held-failure.png")
        raise


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

    log_in(driver)

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
