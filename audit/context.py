"""Where the current change comes from: the client address and request id.

Set once per HTTP request by ``audit.middleware.AuditContextMiddleware`` and per Celery
task by ``audit.receivers``; read by ``audit.services`` when a change is recorded. The
acting user is not kept here: services receive it explicitly as ``actor=``.
"""

import contextlib
import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    ip: str | None = None
    request_id: str = ""


_current: contextvars.ContextVar[Origin | None] = contextvars.ContextVar(
    "audit_origin", default=None
)


def current_origin() -> Origin:
    return _current.get() or Origin()


@contextlib.contextmanager
def origin(*, ip: str | None = None, request_id: str = ""):
    """Changes recorded inside the block come from ``ip`` with ``request_id``."""
    token = _current.set(Origin(ip=ip, request_id=request_id[:64]))
    try:
        yield
    finally:
        _current.reset(token)


def set_task_origin(task_id: str, *, request_id: str | None = None) -> None:
    """For a worker process, which runs one task at a time: changes come from this task
    (from the request that sent it, when given) until the next task sets its own."""
    _current.set(Origin(ip=None, request_id=(request_id or f"task:{task_id}")[:64]))
