"""A bound, kept by the client, on every statement sent to a replica.

The replica's own ``statement_timeout`` ends a slow query, and TCP keepalives and
``tcp_user_timeout`` (settings) end a connection whose peer is gone. Neither ends the
wait on a replica whose server stops answering while its host still acknowledges the
packets (a stopped or hung process): libpq has no read timeout and would wait for ever.
So each statement on a replica connection is watched, and past
``REPLICA_STATEMENT_TIMEOUT_MS`` plus ``GRACE_SECONDS`` (the server's own cancel goes
first) its socket is shut down: libpq sees the connection closed, the statement fails
with the driver's OperationalError, and the router treats it as any failing replica
(skipped for ``REPLICA_DOWN_SECONDS``, the read run again on the primary).
"""

import itertools
import os
import socket
import threading
import time

import psycopg2.extensions
from django.conf import settings

GRACE_SECONDS = 1.0


def statement_deadline_seconds() -> float:
    return settings.REPLICA_STATEMENT_TIMEOUT_MS / 1000 + GRACE_SECONDS


class Watchdog:
    """One thread per process, started at the first statement, that shuts down the
    socket of each watched connection whose statement is past its deadline."""

    def __init__(self):
        self._fresh()
        os.register_at_fork(after_in_child=self._fresh)

    def _fresh(self) -> None:
        """No thread and no lock survive a fork: a child starts its own."""
        self._condition = threading.Condition()
        self._due: dict[int, tuple[float, object]] = {}
        self._keys = itertools.count()
        self._thread = None

    def watch(self, connection, seconds: float) -> int:
        with self._condition:
            key = next(self._keys)
            self._due[key] = (time.monotonic() + seconds, connection)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="replica-statement-deadline", daemon=True
                )
                self._thread.start()
            self._condition.notify()
        return key

    def done(self, key: int) -> None:
        """The statement ended; once this returns its socket is never shut down."""
        with self._condition:
            self._due.pop(key, None)

    def _run(self) -> None:
        with self._condition:
            while True:
                now = time.monotonic()
                for key, (due, connection) in list(self._due.items()):
                    if due <= now:
                        del self._due[key]
                        _shut_down(connection)
                soonest = min((due for due, _ in self._due.values()), default=None)
                self._condition.wait(None if soonest is None else soonest - now)


def _shut_down(connection) -> None:
    """Shut down (both ways) the socket under ``connection``, through a duplicate of its
    descriptor: the connection's own stays open until psycopg2 closes it."""
    try:
        with socket.socket(fileno=os.dup(connection.fileno())) as duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)
    except (OSError, psycopg2.Error):
        pass  # already closed


watchdog = Watchdog()


class BoundedCursor(psycopg2.extensions.cursor):
    """The cursor of every replica connection (``cursor_factory`` in its OPTIONS): each
    statement, and each fetch of a server-side cursor (Django's ``iterator()`` reads in
    ``fetchmany``), ends by its deadline. Django's health check of a kept connection
    runs on it too."""

    def execute(self, query, vars=None):
        return self._within(super().execute, query, vars)

    def executemany(self, query, vars_list):
        return self._within(super().executemany, query, vars_list)

    def fetchmany(self, size=None):
        if self.name is None:  # a client-side cursor holds its rows already
            return super().fetchmany(size)
        return self._within(super().fetchmany, size)

    def _within(self, call, *args):
        key = watchdog.watch(self.connection, statement_deadline_seconds())
        try:
            return call(*args)
        finally:
            watchdog.done(key)
