"""The one HTTP request of a delivery attempt.

Standard-library ``http.client``, connecting to the address ``addresses.checked_receiver``
approved (the Host header and TLS name are the URL's host): no second DNS answer can
point the request elsewhere. Redirects are not followed (a 3xx is a failed attempt), and
every socket operation has ``WEBHOOK_TIMEOUT_SECONDS``; a batch of deliveries to one
receiver shares a kept-alive connection (``Session``).
"""

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from .addresses import Receiver

USER_AGENT = "inventory-webhooks/1"
ERROR_LENGTH = 500
# An answer longer than this is not read: its connection is closed instead of reused.
MAX_ANSWER_READ = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    response_code: int | None
    duration_ms: int
    error: str = ""

    @property
    def succeeded(self) -> bool:
        return self.response_code is not None and 200 <= self.response_code < 300


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, receiver: Receiver, timeout: float):
        super().__init__(receiver.host, receiver.port, timeout=timeout)
        self.address = receiver.address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, receiver: Receiver, timeout: float):
        super().__init__(
            receiver.host, receiver.port, timeout=timeout, context=ssl.create_default_context()
        )
        self.address = receiver.address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class Session:
    """Requests to one receiver over one kept-alive connection: a worker sends a batch
    of deliveries without a TCP (and TLS) handshake each. A connection the receiver
    closed, or one left in an unknown state by a failure, is replaced before the next
    request; a request that failed on a reused connection before any answer is sent
    once more on a new one (receivers deduplicate by ``webhook-id``)."""

    def __init__(self, receiver: Receiver, *, timeout: float):
        self.receiver, self.timeout = receiver, timeout
        self.connection: http.client.HTTPConnection | None = None

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def post(self, body: bytes, headers: dict[str, str]) -> Outcome:
        """POST ``body``; never raises for what the network or the receiver does, it
        reports it."""
        started = time.monotonic()
        # An open socket that served a request may have been closed by the receiver
        # meanwhile; a new one (or one http.client reopens after "Connection: close")
        # failing is an answer.
        reused = self.connection is not None and self.connection.sock is not None
        try:
            try:
                return self._post(body, headers, started)
            except (ConnectionError, http.client.RemoteDisconnected):
                if not reused:
                    raise
                self.close()  # the receiver closed the idle connection: once more
                return self._post(body, headers, started)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return Outcome(
                None, _elapsed_ms(started), f"{type(error).__name__}: {error}"[:ERROR_LENGTH]
            )

    def _post(self, body: bytes, headers: dict[str, str], started: float) -> Outcome:
        if self.connection is None:
            connection_class = (
                _PinnedHTTPSConnection if self.receiver.scheme == "https" else _PinnedHTTPConnection
            )
            self.connection = connection_class(self.receiver, self.timeout)
        self.connection.request(
            "POST",
            self.receiver.target,
            body=body,
            headers={**headers, "Content-Type": "application/json", "User-Agent": USER_AGENT},
        )
        response = self.connection.getresponse()
        response.read(MAX_ANSWER_READ)
        if not response.isclosed():  # a long answer, or one the receiver keeps open
            self.close()
        status = response.status
        error = "" if 200 <= status < 300 else f"HTTP {status} {response.reason}"
        return Outcome(status, _elapsed_ms(started), error[:ERROR_LENGTH])


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
