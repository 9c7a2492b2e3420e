"""The Celery application; configuration comes from the CELERY_* Django settings."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_site.settings")

app = Celery("inventory_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect(dispatch_uid="inventory_site.celery.connections_before")
@task_postrun.connect(dispatch_uid="inventory_site.celery.connections_after")
def close_old_database_connections(task=None, **kwargs) -> None:
    """Around each task, what Django does around each request: close a connection past
    CONN_MAX_AGE or left unusable (an error, autocommit off), and have a kept one
    checked before its first query (CONN_HEALTH_CHECKS). CELERY_DB_REUSE_MAX stops
    Celery closing them all instead. An eager task runs inside its caller's request or
    transaction, whose connection is not this task's to close."""
    if task is not None and task.request.is_eager:
        return
    from django.db import close_old_connections

    close_old_connections()


# The workers count task failures and retries where the web's /metrics reads them; they
# and beat log through the LOGGING setting, and tasks carry the log fields of the request
# that sent them (inventory_site/logs.py).
from . import celery_metrics, logs  # noqa: E402, F401
