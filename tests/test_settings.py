"""Settings come from the environment; with nothing set the project runs embedded."""

import json
import sys

from tests.processes import ROOT, project_env, run, settings_variables

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
}))
"""


def settings_for(**variables) -> dict:
    env = project_env(DJANGO_SETTINGS_MODULE="inventory_site.settings", **variables)
    result = run([sys.executable, "-c", PRINT_SETTINGS], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_with_nothing_set_the_project_runs_embedded():
    settings = settings_for()

    assert settings["DEBUG"] is True
    assert settings["database"] == "django.db.backends.sqlite3"
    assert settings["database_name"].endswith("/db.sqlite3")
    assert settings["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert (settings["broker"], settings["eager"]) == ("memory://", True)
    assert settings["STOCK_CACHE_TTL"] == 60


def test_database_and_redis_urls_switch_to_the_services():
    settings = settings_for(
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
        REDIS_URL="redis://cache.internal:6379/0",
        CELERY_BROKER_URL="amqp://guest:guest@mq.internal:5672//",
    )

    assert (settings["broker"], settings["eager"]) == (
        "amqp://guest:guest@mq.internal:5672//",
        False,
    )


def test_production_settings_are_read_from_the_environment():
    settings = settings_for(
        DEBUG="false", SECRET_KEY="s" * 50, ALLOWED_HOSTS="shop.example.com,.example.org"
    )

    assert settings["DEBUG"] is False
    assert settings["ALLOWED_HOSTS"] == ["shop.example.com", ".example.org"]


def test_with_debug_off_the_site_refuses_to_start_without_a_secret_key():
    result = run(
        [sys.executable, "manage.py", "check"],
        project_env(DEBUG="false", ALLOWED_HOSTS="shop.example.com"),
    )

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "With DEBUG off the site refuses to start" in result.stderr


def test_the_readme_documents_every_environment_variable_the_settings_read():
    readme = (ROOT / "README.md").read_text()
    undocumented = sorted(name for name in settings_variables() if f"`{name}`" not in readme)
    assert undocumented == []
