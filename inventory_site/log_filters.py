"""Filters of the site's log output."""

import logging


class RefusalsWithoutTraceback(logging.Filter):
    """Django logs a refused request (a 403 from PermissionDenied, a 404 from Http404) with
    the exception's traceback, which reads like a crash in the console; the one line
    naming the status and the path says all there is. Errors (5xx) keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", 500) < 500:
            record.exc_info = record.exc_text = None
        return True
