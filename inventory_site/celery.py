"""The Celery application; configuration comes from the CELERY_* Django settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_site.settings")

app = Celery("inventory_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The workers count task failures and retries where the web's /metrics reads them; they
# and beat log through the LOGGING setting, and tasks carry the log fields of the request
# that sent them (inventory_site/logs.py).
from . import celery_metrics, logs  # noqa: E402, F401
