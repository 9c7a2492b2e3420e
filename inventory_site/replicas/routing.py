"""The database router, the request's read state it consults, and the replicas' health.

The rule is the package's (``inventory_site.replicas``). A request's state lives in a
``ContextVar`` set by ``middleware.ReadConsistencyMiddleware``: each thread, and each
asyncio task under ASGI, sees only its own request's. Without that state (Celery tasks,
commands, the shell) every read goes to the primary.
"""

import functools
import itertools
import logging
import time
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

from inventory_site.cache_outage import Circuit, CircuitOpen

from . import positions
from .statements import writes
from .status import replica_status

logger = logging.getLogger(__name__)

PRIMARY = DEFAULT_DB_ALIAS
# A replica's lag and replayed position are asked again after this many seconds (sooner
# for a token beyond the position last seen).
STATUS_SECONDS = 1.0
# The session key of a browser's last write (the header's value, for session users).
SESSION_KEY = "consistency_token"
# What a replica that fails raises through Django: it is skipped, the read retried.
REPLICA_ERRORS = (OperationalError, InterfaceError)

_UNCHOSEN = object()

_request_reads: ContextVar["RequestReads | None"] = ContextVar("request_reads", default=None)


class RequestReads:
    """One request's part in the rule: may it read a replica at all, has it written,
    is it inside ``replica_reads``, and which replica (if any) serves it.

    The replica is chosen once, at the request's first read inside ``replica_reads``,
    and kept for the request, so its reads see one replica's moment."""

    __slots__ = (
        "request",
        "safe",
        "wrote",
        "token_wanted",
        "depth",
        "replica",
        "used",
        "served_by_replica",
    )

    def __init__(self, request):
        self.request = request
        self.safe = request.method in ("GET", "HEAD")
        self.wrote = False
        self.token_wanted = False
        self.depth = 0
        self.replica = _UNCHOSEN
        self.used = False
        self.served_by_replica = False

    def note_statement(self, execute, sql, params, many, context):
        """An execute wrapper on the primary's connection: a statement that writes sends
        the rest of the request to the primary and earns the answer a token."""
        if not self.wrote and writes(sql):
            self.wrote = True
        return execute(sql, params, many, context)

    def alias_for_read(self) -> str:
        if self.wrote or not self.safe or connections[PRIMARY].in_atomic_block:
            return PRIMARY
        if self.replica is _UNCHOSEN:
            self.replica = None  # reads made while choosing (the session) use the primary
            self.replica = replicas.choose(self.required_position())
        if self.replica is None:
            return PRIMARY
        self.used = True
        return self.replica

    def required_position(self) -> int | None:
        """The WAL position a replica must have replayed: the client's last write, from
        the header and, for a browser, from its session; the later of the two."""
        wanted = positions.position(self.request.headers.get("X-Consistency-Token"))
        if settings.SESSION_COOKIE_NAME in self.request.COOKIES:
            kept = positions.position(self.request.session.get(SESSION_KEY))
            if kept is not None and (wanted is None or kept > wanted):
                wanted = kept
        return wanted

    def run(self, function, args, kwargs):
        """``function`` with its reads on a replica; if the replica fails under it, the
        replica is skipped and ``function`` runs again on the primary (it only reads).

        The replica failed when its connection recorded the error: Django marks a
        connection on which connecting, a statement or a fetch failed
        (``errors_occurred``, cleared when it connects again, and the router closes a
        replica's connection after any failure). An error of the primary (a statement
        timeout) is raised as it is: running the function again would give the primary
        the slow query twice and blame a healthy replica."""
        self.used = False
        try:
            result = function(*args, **kwargs)
        except REPLICA_ERRORS as error:
            if not (self.used and connections[self.replica].errors_occurred):
                raise
            replicas.failed(self.replica, error)
            self.replica, self.used = None, False
            return function(*args, **kwargs)
        if self.used:
            self.served_by_replica = True
        return result


def answer_with_token() -> None:
    """Give this request's answer ``X-Consistency-Token`` though it wrote nothing: it
    reports changes made elsewhere (a bulk job a worker finished), and the client's
    next reads must see them. Does nothing without replicas (no request state)."""
    reads = _request_reads.get()
    if reads is not None:
        reads.token_wanted = True


def replica_reads(function):
    """Decorate a function whose reads a replica may serve (the package's rule decides
    whether one does). It must only read: after a replica fails under it, it runs again.

    Costs one ``ContextVar.get`` when no replica is configured (no request state)."""

    @functools.wraps(function)
    def reading(*args, **kwargs):
        reads = _request_reads.get()
        if reads is None or reads.depth:
            return function(*args, **kwargs)
        reads.depth = 1
        try:
            return reads.run(function, args, kwargs)
        finally:
            reads.depth = 0

    return reading


class ReplicaRouter:
    """Django's router: reads inside ``replica_reads`` as the rule allows, all else on
    the primary. Every alias holds the same data, so relations between objects read from
    different ones are fine; only the primary is migrated."""

    def db_for_read(self, model, **hints):
        reads = _request_reads.get()
        if reads is None or not reads.depth:
            # Explicitly the primary: left to Django, a related object would be read
            # from the alias its instance came from.
            return PRIMARY
        return reads.alias_for_read()

    def db_for_write(self, model, **hints):
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == PRIMARY


class ReplicaDown(Circuit):
    """A replica that failed, skipped by this process for ``REPLICA_DOWN_SECONDS``
    (``inventory_site.cache_outage.Circuit``: then one request tries it again)."""

    def __init__(self, alias: str):
        super().__init__(
            f"the read replica {alias}",
            opens_on=lambda error: isinstance(error, REPLICA_ERRORS),
        )

    @staticmethod
    def _open_seconds() -> float:
        return settings.REPLICA_DOWN_SECONDS


class Replicas:
    """Per process: each replica's circuit and its last status (lag, replayed position),
    asked at most every ``STATUS_SECONDS``; and which replica serves a read."""

    def __init__(self):
        self._circuits: dict[str, ReplicaDown] = {}
        self._status: dict[str, tuple[float, float, int]] = {}  # (asked at, lag, replayed)
        self._turn = itertools.count()

    def choose(self, required: int | None) -> str | None:
        """A replica that answers, lags at most ``REPLICA_MAX_LAG_SECONDS`` and has
        replayed ``required`` (None: any position); taken in turn. None: the primary."""
        aliases = settings.REPLICA_DATABASES
        if not aliases or required == positions.UNREACHABLE:
            return None
        first = next(self._turn)
        for offset in range(len(aliases)):
            alias = aliases[(first + offset) % len(aliases)]
            if self._serves(alias, required):
                return alias
        return None

    def _serves(self, alias: str, required: int | None) -> bool:
        status = self._status.get(alias)
        stale = status is None or time.monotonic() - status[0] > STATUS_SECONDS
        if stale or (required is not None and status[2] < required):
            try:
                status = self._read_status(alias)
            except (CircuitOpen, *REPLICA_ERRORS):
                return False
        _, lag, replayed = status
        if lag > settings.REPLICA_MAX_LAG_SECONDS:
            return False
        return required is None or replayed >= required

    def lag_seconds(self, alias: str) -> float:
        """The replica's lag for /metrics, read as the router reads it (and kept for it):
        raises CircuitOpen while this process skips the replica, and the driver's error
        (which opens the circuit) when it fails, so a scrape waits for a failing replica
        no more often than the reads do."""
        return self._read_status(alias)[1]

    def _read_status(self, alias: str) -> tuple[float, float, int]:
        """(asked at, lag, replayed position) read from the replica through its circuit,
        and kept. A replica that has replayed nothing yet has nothing to serve (-1).
        Raises CircuitOpen while the replica is skipped; the driver's error when it
        fails, its connection then closed and its status forgotten."""
        try:
            with self.circuit(alias):
                lag, replayed = replica_status(alias)
        except REPLICA_ERRORS:
            self._status.pop(alias, None)
            _close(alias)
            raise
        status = (time.monotonic(), lag, positions.position(replayed) if replayed else -1)
        self._status[alias] = status
        return status

    def circuit(self, alias: str) -> ReplicaDown:
        circuit = self._circuits.get(alias)
        if circuit is None:
            circuit = self._circuits.setdefault(alias, ReplicaDown(alias))
        return circuit

    def failed(self, alias: str, error: BaseException) -> None:
        """A read on ``alias`` failed: skip it for a while."""
        self.circuit(alias).failed(error)
        self._status.pop(alias, None)
        _close(alias)

    def reset(self) -> None:
        """Forget every replica's status and close their circuits (a test)."""
        self._status.clear()
        for circuit in self._circuits.values():
            circuit.reset()


def _close(alias: str) -> None:
    try:
        connections[alias].close()
    except REPLICA_ERRORS:
        pass


replicas = Replicas()
