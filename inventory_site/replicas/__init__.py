"""Read replicas: which database alias serves a read, and how far each replica lags.

The rule (also in the README, "Read replicas"). With ``DATABASE_REPLICA_URLS`` set, a
read goes to a replica only when all of these hold:

- it runs inside ``replica_reads`` (``routing``): the list and report reads that opt in
  (the API's lists, a product's availability, the ledger, the audit log, the admin's
  store-scoped changelists, the low-stock page);
- in a web request whose method is GET or HEAD, that has not written (any statement
  other than a plain read sent to the primary, ``statements.writes``), outside any
  transaction;
- on a replica that answers, lags at most ``REPLICA_MAX_LAG_SECONDS``, and has replayed
  the client's last write: the WAL position in its ``X-Consistency-Token`` header or in
  its session.

Everything else reads the primary: every write, every read inside a transaction, every
read of a request that writes (a sale, a reservation, a transfer, a bulk job decide on
the primary's rows), the access layer's lookups (who is asking, which store, which role:
they run before and outside any ``replica_reads``, and lists are scoped by the store ids
they give), Celery tasks and commands (no
request), and every read when no replica qualifies. A replica that fails is skipped for
``REPLICA_DOWN_SECONDS``, and the read that met the failure runs again on the primary:
a replica never turns an answer into an error.

After a request that wrote, the answer carries ``X-Consistency-Token``: the primary's WAL
position once its changes committed (``middleware``); a browser's session keeps it too.
So does the status of a bulk job a worker finished (``routing.answer_with_token``).
Without replicas none of this is installed: no router, no middleware, no query.
"""
