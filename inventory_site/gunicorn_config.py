"""gunicorn settings used by ``bin/run web``."""

import os
import shutil

from gunicorn import glogging
from prometheus_client import multiprocess

# One line per request on stdout; WEB_ACCESS_LOG="" turns it off, a path writes there.
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None


class StructuredLogger(glogging.Logger):
    """gunicorn's own lines in LOG_FORMAT, as the application's (README "Logs"). In JSON
    the access line is an object of its own fields, with the request id the answer
    carries (``X-Request-ID``); it costs what gunicorn's line costs (1 µs more). In text
    the access line stays gunicorn's usual one, ``--access-logformat`` included (restyled it
    would cost twice as much)."""

    def setup(self, cfg):
        super().setup(cfg)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_site.settings")
        from django.conf import settings

        from inventory_site import logs

        self.log_format = settings.LOG_FORMAT
        structured = logs.formatter(self.log_format)
        restyled = self.error_log.handlers
        if self.log_format == "json":
            restyled = [*restyled, *self.access_log.handlers]
        for handler in restyled:
            handler.setFormatter(structured)

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        if self.log_format != "json":
            return super().access(resp, req, environ, request_time)
        request_id = next(
            (value for name, value in resp.headers if name.lower() == "x-request-id"), None
        )
        self.access_log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"),
                "query": environ.get("QUERY_STRING") or None,
                "status": resp.status_code,
                "duration_ms": round(request_time.total_seconds() * 1000, 2),
                "remote_addr": environ.get("REMOTE_ADDR"),
            },
        )


logger_class = StructuredLogger


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
