"""Structured logs: every line one JSON object (``LOG_FORMAT=json``) or one readable line
(``LOG_FORMAT=text``), carrying the request id, user and store of the request or Celery
task that wrote it.

The request path pays almost nothing for it: ``AuditContextMiddleware`` puts the request
in a context variable (``bind_request``), and who the user is and which store the URL
names are read only when a line is written (``context_fields``). A request that logs
nothing pays for one context variable.

A task sent while a request (or another task) runs carries those fields in a message
header (``before_task_publish``); the worker binds them for the task's lines
(``task_prerun``). A task run eagerly inside a request sees the request itself.

The signal receivers are connected when this module is imported: by the LOGGING setting's
formatters (every process that configures logging), the middleware and the Celery app.
"""

import contextvars
import logging
import logging.config

import structlog
from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished
from django.dispatch import receiver
from django.utils.functional import SimpleLazyObject, empty

FORMATS = ("json", "text")
# The fields every line written during a request carries (None when unknown: an anonymous
# user, a URL that names no store), and that a task caused by the request carries too.
CONTEXT_FIELDS = ("request_id", "user", "store")
# The Celery message header that carries them to the worker.
TASK_HEADER = "log_context"

# Fields a record may carry as ``extra``: the status Django's request log names, and the
# fields of gunicorn's access line (inventory_site/gunicorn_config.py).
EXTRA_FIELDS = (
    "status_code", "request_id", "method", "path", "query", "status", "duration_ms", "remote_addr",
)  # fmt: skip

_request: contextvars.ContextVar = contextvars.ContextVar("log_request", default=None)
_task: contextvars.ContextVar[dict | None] = contextvars.ContextVar("log_task", default=None)
_task_tokens: dict[str, contextvars.Token] = {}


def bind_request(request) -> None:
    """Lines written from now until the request finishes carry its fields. Called by
    ``AuditContextMiddleware`` once ``request.request_id`` is set. Not reset when the
    middleware returns: Django logs a 4xx or 5xx answer after every middleware has run."""
    _request.set(request)


@receiver(request_finished, dispatch_uid="inventory_site.logs.forget_request")
def forget_request(**kwargs) -> None:
    _request.set(None)


def request_fields(request) -> dict:
    match = request.resolver_match
    return {
        "request_id": getattr(request, "request_id", None),
        "user": _username(request),
        "store": match.kwargs.get("code") if match is not None else None,
    }


def _username(request) -> str | None:
    """The user once authentication has run (DRF's for the API, the session's where a
    page asked for it). A log line never triggers the session or token lookup itself."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = user.__dict__["_wrapped"]
        if user is empty:
            return None
    if user is None or not user.is_authenticated:
        return None
    return user.get_username()


def context_fields() -> dict:
    """The current request's fields, with those of the running task over them."""
    request, task = _request.get(), _task.get()
    fields = request_fields(request) if request is not None else {}
    if task:
        fields.update(task)
    return fields


def add_context(logger, method_name: str, event_dict: dict) -> dict:
    """structlog processor: the request's and task's fields, unless the line names its own."""
    for key, value in context_fields().items():
        event_dict.setdefault(key, value)
    return event_dict


# --- Celery: the request's fields travel with the tasks it sends ------------------------


@before_task_publish.connect(dispatch_uid="inventory_site.logs.send_context")
def send_context(headers=None, **kwargs) -> None:
    fields = context_fields()
    if headers is not None and fields.get("request_id"):
        headers[TASK_HEADER] = {key: fields.get(key) for key in CONTEXT_FIELDS}


def sent_context(task) -> dict:
    """The fields a task's message carries: empty for one sent outside any request (beat's,
    a worker's start-up sweep) and for an eager task (nothing was published)."""
    sent = task.request.get(TASK_HEADER)
    return {key: sent.get(key) for key in CONTEXT_FIELDS} if isinstance(sent, dict) else {}


@task_prerun.connect(dispatch_uid="inventory_site.logs.bind_task")
def bind_task(task_id=None, task=None, **kwargs) -> None:
    fields = {"task_id": task_id, "task": task.name, **sent_context(task)}
    _task_tokens[task_id] = _task.set(fields)


@task_postrun.connect(dispatch_uid="inventory_site.logs.unbind_task")
def unbind_task(task_id=None, **kwargs) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        _task.reset(token)


@setup_logging.connect(dispatch_uid="inventory_site.logs.celery_uses_django_logging")
def celery_uses_django_logging(**kwargs) -> None:
    """Workers and beat log through the LOGGING setting, as the web processes do, instead
    of Celery replacing the root logger's handlers with its own format."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


# --- Formatting -------------------------------------------------------------------------

_PRE_CHAIN = [
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(allow=EXTRA_FIELDS),
    add_context,
]


def formatter(log_format: str) -> structlog.stdlib.ProcessorFormatter:
    """The LOGGING setting's formatter for ``LOG_FORMAT``."""
    if log_format not in FORMATS:
        raise ImproperlyConfigured(f"LOG_FORMAT must be one of {', '.join(FORMATS)}.")
    if log_format == "json":
        rendering = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        rendering = [
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            )
        ]
    _configure_structlog()
    # Python's warnings (a missing static directory, a deprecation) become lines in the
    # same format, on the "py.warnings" logger.
    logging.captureWarnings(True)
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_PRE_CHAIN,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
    )


def _configure_structlog() -> None:
    """``structlog.get_logger()`` loggers go through the same handlers and fields as the
    standard library's."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_PRE_CHAIN,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
