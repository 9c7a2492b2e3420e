"""Which SQL statements change the database, as the replica rule counts them."""

import re

READING = ("SELECT", "WITH", "EXPLAIN", "VALUES", "TABLE")
HARMLESS = ("SHOW", "SET", "SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT")
LOCKING = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+|KEY\s+)?(?:UPDATE|SHARE)\b", re.IGNORECASE)
CHANGING = re.compile(r"\b(?:INSERT|UPDATE|DELETE|MERGE|TRUNCATE)\b", re.IGNORECASE)


def writes(sql: str) -> bool:
    """Whether ``sql`` changes data or locks rows (``SELECT ... FOR UPDATE`` precedes a
    change, and a standby refuses it). Errs towards yes: a read taken for a write only
    sends the rest of its request to the primary."""
    head = sql.lstrip()[:10].upper()
    if head.startswith(READING):
        return LOCKING.search(sql) is not None or CHANGING.search(sql) is not None
    return not head.startswith(HARMLESS)


class WriteReachedReplica(AssertionError):
    """A statement that writes was sent to a replica alias (``guard_replica``)."""


def guard_replica(alias: str):
    """An execute wrapper (Django's ``connection.execute_wrapper``) that refuses every
    statement that ``writes`` before it leaves the process: on a replica such a statement
    is a routing bug, whether the standby would refuse it or (a test's mirror of the
    primary) carry it out."""

    def refuse_writes(execute, sql, params, many, context):
        if writes(sql):
            raise WriteReachedReplica(f"a write reached the replica {alias}: {sql[:200]}")
        return execute(sql, params, many, context)

    return refuse_writes
