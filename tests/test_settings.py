"""Settings come from the environment. With DEBUG on and nothing else set the project runs
embedded; with nothing set at all it refuses to start, and so it does with DEBUG off and a
missing or weak SECRET_KEY."""

import json
import re
import subprocess
import sys

import pytest
from django.test import Client

from tests.processes import ROOT, bare_env, run, settings_variables

PRINT_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
    "database": settings.DATABASES["default"]["ENGINE"],
    "database_name": str(settings.DATABASES["default"]["NAME"]),
    "cache": settings.CACHES["default"]["BACKEND"],
    "cache_location": settings.CACHES["default"].get("LOCATION", ""),
    "broker": settings.CELERY_BROKER_URL,
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "STOCK_CACHE_TTL": settings.STOCK_CACHE_TTL,
    "MIDDLEWARE": settings.MIDDLEWARE,
}))
"""


# A key as `python3 -c 'import secrets; print(secrets.token_urlsafe(50))'` prints one.
STRONG_KEY = "q3Jx9vLr0b-TkW2mZ8sYcN4hPe7uGfA1dV6oRiE5_nBl-HjKwQzXyCtUaSgMpDoF"


def settings_for(**variables) -> dict:
    """The settings a process started with only ``variables`` set reads."""
    env = bare_env(DJANGO_SETTINGS_MODULE="inventory_site.settings", **variables)
    result = run([sys.executable, "-c", PRINT_SETTINGS], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def manage_py(*args: str, **variables) -> subprocess.CompletedProcess:
    return run([sys.executable, "manage.py", *args], bare_env(**variables))


def test_with_debug_on_and_nothing_else_set_the_project_runs_embedded():
    settings = settings_for(DEBUG="true")

    assert settings["DEBUG"] is True
    assert settings["database"] == "django.db.backends.sqlite3"
    assert settings["database_name"].endswith("/db.sqlite3")
    assert settings["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert (settings["broker"], settings["eager"]) == ("memory://", True)
    assert settings["STOCK_CACHE_TTL"] == 60


def test_database_and_redis_urls_switch_to_the_services():
    settings = settings_for(
        DEBUG="true",
        DATABASE_URL="postgres://inventory:secret@db.internal:5432/inventory",
        REDIS_URL="redis://cache.internal:6379/0",
        STOCK_CACHE_TTL="15",
    )

    assert settings["database"] == "django.db.backends.postgresql"
    assert settings["database_name"] == "inventory"
    assert settings["cache"] == "django_redis.cache.RedisCache"
    assert settings["cache_location"] == "redis://cache.internal:6379/0"
    assert (settings["broker"], settings["eager"]) == ("redis://cache.internal:6379/0", False)
    assert settings["STOCK_CACHE_TTL"] == 15


def test_a_separate_broker_url_wins_over_redis_url():
    settings = settings_for(
        DEBUG="true",
        REDIS_URL="redis://cache.internal:6379/0",
        CELERY_BROKER_URL="amqp://guest:guest@mq.internal:5672//",
    )

    assert (settings["broker"], settings["eager"]) == (
        "amqp://guest:guest@mq.internal:5672//",
        False,
    )


def test_production_settings_are_read_from_the_environment():
    settings = settings_for(
        DEBUG="false", SECRET_KEY=STRONG_KEY, ALLOWED_HOSTS="shop.example.com,.example.org"
    )

    assert settings["DEBUG"] is False
    assert settings["ALLOWED_HOSTS"] == ["shop.example.com", ".example.org"]


@pytest.mark.parametrize("debug", ["false", "true"])
def test_static_files_are_served_after_the_security_middleware_so_they_get_its_headers(debug):
    """WhiteNoise answers a static file without calling what follows it: placed before
    the security middleware, the file would go without HSTS, nosniff and the redirect.
    With DEBUG too: gunicorn on a developer's machine serves them from the apps."""
    middleware = settings_for(DEBUG=debug, SECRET_KEY=STRONG_KEY)["MIDDLEWARE"]

    security = middleware.index("django.middleware.security.SecurityMiddleware")
    assert middleware[security + 1] == "whitenoise.middleware.WhiteNoiseMiddleware"


def test_with_nothing_set_the_project_refuses_to_start_naming_secret_key():
    """DEBUG is off unless asked for, so a process that was given nothing does not fall
    back to the development key."""
    result = manage_py("check")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is not set. With DEBUG off "
        "the site refuses to start without a secret key: set SECRET_KEY to a long random "
        "string, e.g. SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
    assert result.stdout == ""


def test_with_debug_off_the_site_refuses_to_start_without_a_secret_key():
    result = manage_py("check", DEBUG="false", ALLOWED_HOSTS="shop.example.com")

    assert result.returncode == 1
    assert "ImproperlyConfigured: SECRET_KEY is not set." in result.stderr


WEAK_KEYS = {
    "49 characters": STRONG_KEY[:49],
    "4 different characters": "abcd" * 20,
    "the development key": "insecure-development-key-do-not-use-in-production",
    "Django's insecure prefix": "django-insecure-" + STRONG_KEY,
}


@pytest.mark.parametrize("key", WEAK_KEYS.values(), ids=WEAK_KEYS)
def test_with_debug_off_a_weak_secret_key_is_refused(key):
    result = manage_py("check", DEBUG="false", SECRET_KEY=key, ALLOWED_HOSTS="shop.example.com")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is too weak. With DEBUG off "
        "the site refuses to start with a key shorter than 50 characters, with fewer than 5 "
        "different characters, or the development key: set SECRET_KEY to a long random "
        "string, e.g. SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )


@pytest.mark.parametrize("key", WEAK_KEYS.values(), ids=WEAK_KEYS)
def test_with_debug_on_any_key_is_accepted(key):
    result = manage_py("check", DEBUG="true", SECRET_KEY=key)

    assert (result.returncode, result.stdout) == (
        0,
        "System check identified no issues (0 silenced).\n",
    ), result.stderr


# The production settings of the README's "Production" section, behind a TLS proxy.
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": STRONG_KEY,
    "ALLOWED_HOSTS": "shop.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://shop.example.com",
    "SECURE_PROXY_SSL_HEADER": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SECURE_COOKIES": "true",
}


def test_the_deployment_check_passes_with_the_production_settings():
    result = manage_py("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert (result.returncode, result.stdout) == (
        0,
        "System check identified no issues (0 silenced).\n",
    ), result.stderr


def test_the_deployment_check_warns_about_each_production_setting_left_out():
    plain_http = {key: PRODUCTION[key] for key in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")}

    result = manage_py("check", "--deploy", "--fail-level", "WARNING", **plain_http)

    assert result.returncode == 1
    warned = sorted(set(re.findall(r"\((security\.W\d+)\)", result.stderr)))
    # W004 HSTS, W008 SSL redirect, W012 session cookie, W016 CSRF cookie.
    assert warned == ["security.W004", "security.W008", "security.W012", "security.W016"]


PRINT_RETENTION = """
import sys, django
from django.conf import settings
django.setup()
print(getattr(settings, sys.argv[1]))
"""
RETENTIONS = ["STOCK_EVENT_RETENTION_DAYS", "WEBHOOK_DELIVERY_RETENTION_DAYS"]


@pytest.mark.parametrize("name", RETENTIONS)
@pytest.mark.parametrize("value, days", [(None, "30"), ("7", "7")])
def test_stock_events_and_finished_deliveries_are_kept_thirty_days_unless_set(name, value, days):
    variables = {} if value is None else {name: value}
    env = bare_env(DJANGO_SETTINGS_MODULE="inventory_site.settings", DEBUG="true", **variables)

    result = run([sys.executable, "-c", PRINT_RETENTION, name], env)

    assert (result.returncode, result.stdout) == (0, f"{days}\n"), result.stderr


@pytest.mark.parametrize("name", RETENTIONS)
def test_a_retention_of_less_than_a_day_refuses_to_start(name):
    result = manage_py("check", DEBUG="true", **{name: "0"})

    assert result.returncode == 1
    assert f"{name} must be at least 1" in result.stderr


def test_the_readme_documents_every_environment_variable_the_settings_read():
    readme = (ROOT / "README.md").read_text()
    undocumented = sorted(name for name in settings_variables() if f"`{name}`" not in readme)
    assert undocumented == []


@pytest.mark.django_db
def test_behind_https_plain_http_is_redirected_except_the_health_checks_and_metrics(settings):
    """bin/run ping-web (the container's health check), /readyz and the Prometheus scrape
    come over plain HTTP from inside the deployment."""
    settings.SECURE_SSL_REDIRECT = True
    client = Client()

    admin = client.get("/admin/login/")
    inside = {path: client.get(path).status_code for path in ("/healthz", "/readyz", "/metrics")}

    assert (admin.status_code, admin["Location"]) == (301, "https://testserver/admin/login/")
    assert inside["/healthz"] == 200
    assert 301 not in inside.values(), inside
