"""Fixtures of the browser tests: the deployed web process on the test database, and
headless Chromium (Debian's ``chromium`` and ``chromium-driver``; both paths are given to
Selenium, so Selenium Manager never downloads anything)."""

import os
import re
import uuid

import pytest
from django.conf import Settings
from django.core.management import call_command

from tests.processes import ProjectProcesses, project_env, run, url_of_the_test_database

from .driving import CHROMEDRIVER, CHROMIUM, MISSING, MISSING_REASON, WAIT, Service, webdriver


@pytest.fixture
def web(deployment) -> str:
    """The base URL of ``bin/run web`` on the test database."""
    return deployment.web_url


@pytest.fixture
def deployment(transactional_db, tmp_path):
    """``bin/run web`` on the test database, its static files collected first; yields
    its ``ProjectProcesses`` (``web_url``: its base URL), where a test may start more
    processes with the same settings. Stopped at teardown, before the test database is
    flushed."""
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
        DASHBOARD_POLL_SECONDS="0.5",  # the store dashboard, without a stream
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        STATIC_ROOT=str(static_root),
    )
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]  # the cache, as in the services mode
    collected = run(["bin/run", "collectstatic"], env)
    assert collected.returncode == 0, collected.stdout[-2000:] + collected.stderr[-2000:]
    processes = ProjectProcesses(env, tmp_path)
    try:
        processes.web_url = f"http://127.0.0.1:{processes.start_web()}"
        yield processes
    finally:
        processes.stop_all()


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium through chromedriver, both Debian's; files it downloads land in
    ``driver.downloads``."""
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
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    service = Service(
        executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log")
    )
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT)
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def demo_manager_password(settings, capsys) -> str:
    """Load the demo data as ``make run`` does; returns the demo manager's password. The
    site's own password hashers are used, so that the web process can check it."""
    settings.PASSWORD_HASHERS = Settings(os.environ["DJANGO_SETTINGS_MODULE"]).PASSWORD_HASHERS
    call_command("seed_demo")
    printed = capsys.readouterr().out
    return re.search(r"^\s+manager\s+password (\S+)", printed, re.M)[1]
