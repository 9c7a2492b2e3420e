"""``bin/run events``: the ASGI process that serves the live streams, with uvicorn.

Started here rather than by uvicorn's command line so that uvicorn configures no logging
of its own: Django's (LOG_FORMAT) writes its lines as every other process's. No access
log: a stream is one request that lasts hours.
"""

import argparse

import uvicorn


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="bin/run events")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--max-connections",
        type=int,
        default=5000,
        help="open connections past which a process answers 503 (file descriptors: each "
        "stream takes one)",
    )
    options = parser.parse_args(argv)
    uvicorn.run(
        "inventory_site.asgi:application",
        host=options.host,
        port=options.port,
        workers=options.workers,
        limit_concurrency=options.max_connections,
        # Open streams never finish: on SIGTERM they are cut after this, and their
        # clients reconnect (to another process) with Last-Event-ID.
        timeout_graceful_shutdown=5,
        # The C event loop and HTTP parser (requirements.txt), named so that a missing
        # one fails the start instead of falling back to the pure-Python ones.
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
