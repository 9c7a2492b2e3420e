"""Run callables at the same moment in real threads, each on its own connection."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

from django.db import connections

from tests.processes import machine_lock

# Past this many calls a race holds the machine's "connections" lock: PostgreSQL takes
# 100 connections by default, and two test workers' races of 50 or 64 at once exceed it.
MANY_CONNECTIONS = 16


def run_together(calls: list[Callable[[], object]], *, timeout: float = 120) -> list[object]:
    """Start every call at once (a barrier releases them together) and return, in order,
    each call's result or the exception it raised.

    Each call runs in its own thread, so Django gives it its own database connection;
    the connection is closed when the call ends. A race of more than
    ``MANY_CONNECTIONS`` calls waits for any other such race on the machine to end.
    """
    barrier = threading.Barrier(len(calls), timeout=timeout)

    def run(call):
        try:
            barrier.wait()
            return call()
        except Exception as error:
            return error
        finally:
            connections.close_all()

    lock = machine_lock("connections") if len(calls) > MANY_CONNECTIONS else nullcontext()
    with lock, ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result(timeout=timeout) for future in futures]
