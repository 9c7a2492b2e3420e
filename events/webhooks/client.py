"""The one HTTP request of a delivery attempt.

Standard-library ``http.client``, connecting to the address ``addresses.checked_receiver``
approved (the Host header and TLS name are the URL's host): no second DNS answer can
point the request elsewhere. Redirects are not followed (a 3xx is a failed attempt), and
every socket operation has ``WEBHOOK_TIMEOUT_SECONDS``; the response body is not read
beyond a few bytes.
"""

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from .addresses import Receiver

USER_AGENT = "inventory-webhooks/1"
ERROR_LENGTH = 500


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


def post(receiver: Receiver, body: bytes, headers: dict[str, str], *, timeout: float) -> Outcome:
    """POST ``body`` to ``receiver``; never raises for what the network or the receiver
    does, it reports it."""
    connection_class = (
        _PinnedHTTPSConnection if receiver.scheme == "https" else _PinnedHTTPConnection
    )
    connection = connection_class(receiver, timeout)
    started = time.monotonic()
    try:
        connection.request(
            "POST",
            receiver.target,
            body=body,
            headers={
                **headers,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Connection": "close",
            },
        )
        response = connection.getresponse()
        response.read(1024)
        error = "" if 200 <= response.status < 300 else f"HTTP {response.status} {response.reason}"
        return Outcome(response.status, _elapsed_ms(started), error[:ERROR_LENGTH])
    except (OSError, http.client.HTTPException) as error:
        return Outcome(
            None, _elapsed_ms(started), f"{type(error).__name__}: {error}"[:ERROR_LENGTH]
        )
    finally:
        connection.close()


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
