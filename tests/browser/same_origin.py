"""One origin for the web process and the events process, as a deployment's load
balancer gives them: requests for ``/api/v1/stores/<code>/events/stream/`` go to the
events process, everything else to the web process. The store dashboard opens its
EventSource on its own origin (``EVENTS_STREAM_URL`` empty), with the session cookie.

A threaded HTTP/1.0 relay: each request on its own connection, the answer streamed back
a chunk at a time as it arrives (Server-Sent Events must not wait for the end)."""

import http.client
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STREAM_PATH = re.compile(r"^/api/v1/stores/[^/]+/events/stream/")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade"}


class SameOrigin:
    def __init__(self, web_port: int, events_port: int):
        ports = {"web": web_port, "events": events_port}

        class Relay(BaseHTTPRequestHandler):
            def do_GET(self):
                self.relay()

            do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

            def relay(self):
                target = ports["events" if STREAM_PATH.match(self.path) else "web"]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = http.client.HTTPConnection("127.0.0.1", target, timeout=300)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    self.send_response_only(answer.status, answer.reason)
                    for name, value in answer.getheaders():
                        if name.lower() not in HOP_BY_HOP | {"content-length"}:
                            self.send_header(name, value)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    while chunk := answer.read1(65536):
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (OSError, http.client.HTTPException):
                    pass  # the browser or the upstream went away
                finally:
                    upstream.close()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "SameOrigin":
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
