"""The live stream: ``GET /api/v1/stores/{code}/events/stream/`` as Server-Sent Events,
served by the ASGI process (``bin/run events``).

A stream subscribes to its store's Redis channel first (``hub``), then sends the log
after the client's cursor (``Last-Event-ID`` or ``?after=``) and then what it hears,
skipping what it sent and reading the log again for any event it did not hear: no gap,
no duplicate, in ``seq`` order. It holds no database connection while it waits
(``log``).
"""
