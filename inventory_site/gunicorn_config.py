"""gunicorn settings used by ``bin/run web``."""

import os
import shutil

from prometheus_client import multiprocess

# One line per request on stdout; WEB_ACCESS_LOG="" turns it off, a path writes there.
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None


def on_starting(server):
    """Each worker writes its metrics to PROMETHEUS_MULTIPROC_DIR; start from empty so
    counters of a previous run are not added in."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
