"""Each request's read state, and the headers that carry read-your-writes across requests.

Installed only when replicas are configured (settings); without them a request pays
nothing for any of this.
"""

import contextlib
import logging

from django.conf import settings
from django.db import DatabaseError, connections

from . import positions
from .routing import PRIMARY, SESSION_KEY, RequestReads, _request_reads
from .statements import guard_replica

logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-Consistency-Token"
SERVED_BY_HEADER = "X-Served-By"


class ReadConsistencyMiddleware:
    """Sets the request's ``RequestReads`` for the router, watches the primary's
    connection for writes, and answers:

    - ``X-Consistency-Token``, after a request that wrote (or that asked for one,
      ``routing.answer_with_token``: a finished bulk job's status): the primary's WAL
      position once the request's transactions committed (one query; a sale's locked
      section is long over). A browser's session keeps the latest too, so its next page
      reads a replica only once that replica has the write.
    - ``X-Served-By``: ``replica`` when a replica served any of the answer's reads,
      else ``primary``.

    Goes after the session middleware: it reads and writes the session, which that one
    then saves. With ``REPLICA_WRITE_GUARD`` (tests) a statement that writes is refused
    before it reaches a replica (``statements.guard_replica``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        reads = RequestReads(request)
        context = _request_reads.set(reads)
        try:
            with contextlib.ExitStack() as wrappers:
                wrappers.enter_context(connections[PRIMARY].execute_wrapper(reads.note_statement))
                if settings.REPLICA_WRITE_GUARD:
                    for alias in settings.REPLICA_DATABASES:
                        wrappers.enter_context(
                            connections[alias].execute_wrapper(guard_replica(alias))
                        )
                response = self.get_response(request)
        finally:
            _request_reads.reset(context)
        if reads.wrote or reads.token_wanted:
            self.give_token(request, response)
        response[SERVED_BY_HEADER] = "replica" if reads.served_by_replica else "primary"
        return response

    def give_token(self, request, response) -> None:
        try:
            with connections[PRIMARY].cursor() as cursor:
                cursor.execute("SELECT pg_current_wal_lsn()::text")
                (written,) = cursor.fetchone()
        except DatabaseError as error:
            # The change committed; without a token the client's next reads may come from
            # a replica that lacks it, for at most REPLICA_MAX_LAG_SECONDS.
            logger.warning("No consistency token for this answer: %r", error)
            return
        response[TOKEN_HEADER] = written
        session = getattr(request, "session", None)
        if session is not None and session.session_key is not None:
            kept = positions.position(session.get(SESSION_KEY))
            if kept is None or kept < positions.position(written):
                session[SESSION_KEY] = written
