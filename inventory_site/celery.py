"""The Celery application; configuration comes from the CELERY_* Django settings."""

import os

from celery import Celery

# Connects the receivers that make workers and beat log through the LOGGING setting and
# carry a request's log fields into the tasks it sends.
from inventory_site import logs  # noqa: F401

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_site.settings")

app = Celery("inventory_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The workers count task failures and retries where the web's /metrics reads them.
from . import celery_metrics  # noqa: E402, F401
