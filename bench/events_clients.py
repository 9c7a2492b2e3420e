"""The clients of ``events_bench.py``, each an asyncio process of its own so that the
bench's own work never delays what it times: a webhook receiver, a holder of open live
streams, and a writer that sends stock changes at a steady rate.

    python bench/events_clients.py receiver --port P --secrets FILE
    python bench/events_clients.py streams --port P --token T --store CODE=COUNT ...
    python bench/events_clients.py writer --port P --token T --rate R --seconds S PATH ...

They speak plain HTTP/1.1 over asyncio sockets, parsing no more than they must: on 2
shared cores every client's CPU is taken from the servers it measures. Each records
``time.time()`` when a thing arrives; the bench compares it with the event's ``at``
(written by another process on the same machine, the same clock).
"""

import argparse
import array
import asyncio
import base64
import hashlib
import hmac
import json
import re
import sys
import time

# --- Webhook receiver ---------------------------------------------------------------------


class Receiver:
    """Records the first arrival of each ``webhook-id`` per path (one path per
    subscription), counts repeats, and checks each signature with the path's secret
    (Standard Webhooks: HMAC-SHA256 of ``{id}.{timestamp}.{body}``)."""

    def __init__(self, secrets: dict[str, str]):
        self.keys = {
            path: base64.b64decode(secret.removeprefix("whsec_"))
            for path, secret in secrets.items()
        }
        self.arrivals: dict[str, dict[str, float]] = {path: {} for path in secrets}
        self.repeats = 0
        self.refused: list[str] = []  # what was wrong with a request, first few

    def record(self, path: str, headers: dict[str, str], body: bytes, arrived: float) -> int:
        key = self.keys.get(path)
        message_id = headers.get("webhook-id", "")
        if key is None or not message_id:
            return self._refuse(f"{path}: unknown path or no webhook-id")
        signed = f"{message_id}.{headers.get('webhook-timestamp', '')}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        offered = [part.split(",", 1)[-1] for part in headers.get("webhook-signature", "").split()]
        if not any(hmac.compare_digest(expected, signature) for signature in offered):
            return self._refuse(f"{path} {message_id}: bad signature")
        try:
            payload = json.loads(body)
        except ValueError:
            return self._refuse(f"{path} {message_id}: body is not JSON")
        if f"{payload.get('store')}:{payload.get('seq')}" != message_id:
            return self._refuse(f"{path} {message_id}: body names {payload.get('seq')}")
        seen = self.arrivals[path]
        if message_id in seen:
            self.repeats += 1
        else:
            seen[message_id] = arrived
        return 204

    def _refuse(self, problem: str) -> int:
        if len(self.refused) < 20:
            self.refused.append(problem)
        return 400

    async def serve(self, reader, writer) -> None:
        """Answer requests on the connection until the client closes it (kept alive, as
        the workers' batches expect of a receiver)."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.time()
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "GET" and path == "/_state":
                    answer = json.dumps(
                        {
                            "counts": {path: len(ids) for path, ids in self.arrivals.items()},
                            "repeats": self.repeats,
                            "refused": self.refused,
                        }
                    ).encode()
                    status = 200
                elif method == "GET" and path == "/_arrivals":
                    answer, status = json.dumps(self.arrivals).encode(), 200
                else:
                    answer, status = b"", self.record(path, headers, body, arrived)
                reason = {200: "OK", 204: "No Content"}.get(status, "Bad Request")
                closing = headers.get("connection", "").lower() == "close"
                keep = "close" if closing else "keep-alive"
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(answer)}\r\n"
                    f"Connection: {keep}\r\n\r\n".encode()
                    + answer
                )
                await writer.drain()
                if closing:
                    break
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


async def receive(port: int, secrets: dict[str, str]) -> None:
    receiver = Receiver(secrets)
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", port, backlog=1024)
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


# --- Live streams ------------------------------------------------------------------------

# A frame's id line. Each SSE frame is one chunk of the chunked answer, so a chunk-size
# line never falls inside a frame; a misreading would break the seq order, which is checked.
ID_LINE = re.compile(rb"(?m)^id: (\d+)\r?$")


class Stream:
    """One client of one store's stream: the arrival time of each seq (0.0 until it
    came), and what broke the order (a seq other than the last + 1)."""

    def __init__(self, store: str):
        self.store = store
        self.arrivals = array.array("d")
        self.last = 0
        self.disorders = 0
        self.reconnects = 0
        self.connected = asyncio.Event()

    def heard(self, seq: int, at: float) -> None:
        if seq != self.last + 1:
            self.disorders += 1
        if seq >= len(self.arrivals):
            self.arrivals.extend([0.0] * (seq + 1024 - len(self.arrivals)))
        if not self.arrivals[seq]:
            self.arrivals[seq] = at
        self.last = max(self.last, seq)


async def follow(stream: Stream, port: int, token: str) -> None:
    """Keep ``stream`` open, resuming with ``Last-Event-ID`` if it is cut (counted)."""
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"GET /api/v1/stores/{stream.store}/events/stream/ HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\n"
                f"Accept: text/event-stream\r\nLast-Event-ID: {stream.last}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise OSError(head.split(b"\r\n", 1)[0].decode())
            stream.connected.set()
            pending = b""
            while data := await reader.read(65536):
                at = time.time()
                pending += data
                cut = pending.rfind(b"\n") + 1
                for seq in ID_LINE.findall(pending, 0, cut):
                    stream.heard(int(seq), at)
                pending = pending[cut:]
            writer.close()
        except (OSError, asyncio.IncompleteReadError) as error:
            print(f"stream of {stream.store} failed: {error!r}", file=sys.stderr, flush=True)
            await asyncio.sleep(0.5)
        stream.reconnects += 1


async def hold_streams(port: int, token: str, counts: dict[str, int]) -> None:
    """Open the streams, then answer commands on stdin: ``state`` (per store, the lowest
    last seq heard by its clients) and ``dump FILE`` (every arrival, see ``dump``)."""
    streams = [Stream(store) for store, count in counts.items() for _ in range(count)]
    tasks = [asyncio.create_task(follow(stream, port, token)) for stream in streams]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in streams)), 300)
    except TimeoutError:
        opened = sum(stream.connected.is_set() for stream in streams)
        raise SystemExit(f"{opened} of {len(streams)} streams answered within 300 s") from None
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command, *argument = line.split()
        if command == "state":
            state = {store: min(s.last for s in streams if s.store == store) for store in counts}
            print(json.dumps(state), flush=True)
        elif command == "dump":
            dump(streams, argument[0])
            print("DUMPED", flush=True)
    for task in tasks:
        task.cancel()


def dump(streams: list[Stream], path: str) -> None:
    """A JSON line per stream (store, last, disorders, reconnects, length), each followed
    by its arrivals as raw doubles (index: seq)."""
    with open(path, "wb") as output:
        for stream in streams:
            header = {
                "store": stream.store,
                "last": stream.last,
                "disorders": stream.disorders,
                "reconnects": stream.reconnects,
                "length": len(stream.arrivals),
            }
            output.write(json.dumps(header).encode() + b"\n")
            output.write(stream.arrivals.tobytes())


def read_dump(path: str) -> list[tuple[dict, array.array]]:
    streams = []
    with open(path, "rb") as source:
        while line := source.readline():
            header = json.loads(line)
            arrivals = array.array("d")
            arrivals.frombytes(source.read(8 * header["length"]))
            streams.append((header, arrivals))
    return streams


# --- Steady writer ------------------------------------------------------------------------

VERSION = re.compile(rb'"sku":"([^"]+)".*"version":(\d+)')


async def write_steadily(port: int, token: str, paths: list[str], rate: float,
                         seconds: float) -> dict:  # fmt: skip
    """``POST path {"quantity": 1}`` at ``rate`` per second for ``seconds``, round-robin
    over ``paths``, each sent on schedule whatever the earlier ones take (its own
    connection). Returns, per write, (sku, version, sent, answered, status)."""
    body = b'{"quantity": 1}'
    requests = [
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        + body
        for path in paths
    ]
    writes = []

    async def write(request: bytes) -> None:
        sent = time.time()
        status, sku, version = 0, "", 0
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            answer = await reader.read()  # until gunicorn closes the connection
            writer.close()
            status = int(answer[9:12])
            if found := VERSION.search(answer):
                sku, version = found.group(1).decode(), int(found.group(2))
        except (OSError, ValueError):
            pass
        writes.append((sku, version, sent, time.time(), status))

    started = time.monotonic()
    tasks = []
    for number in range(int(rate * seconds)):
        delay = started + number / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(write(requests[number % len(requests)])))
    await asyncio.gather(*tasks)
    return {"writes": writes, "cpu_s": time.process_time()}


# --- Entry point ------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="events_clients.py")
    commands = parser.add_subparsers(dest="command", required=True)
    receiver = commands.add_parser("receiver")
    receiver.add_argument("--port", type=int, required=True)
    receiver.add_argument("--secrets", required=True, help="JSON file: {path: secret}")
    streams = commands.add_parser("streams")
    streams.add_argument("--port", type=int, required=True)
    streams.add_argument("--token", required=True)
    streams.add_argument("--store", action="append", required=True, help="CODE=COUNT")
    writer = commands.add_parser("writer")
    writer.add_argument("--port", type=int, required=True)
    writer.add_argument("--token", required=True)
    writer.add_argument("--rate", type=float, required=True)
    writer.add_argument("--seconds", type=float, required=True)
    writer.add_argument("paths", nargs="+")
    options = parser.parse_args(argv)
    if options.command == "receiver":
        with open(options.secrets) as source:
            asyncio.run(receive(options.port, json.load(source)))
    elif options.command == "streams":
        counts = {code: int(count) for code, count in (s.split("=") for s in options.store)}
        asyncio.run(hold_streams(options.port, options.token, counts))
    else:
        result = asyncio.run(write_steadily(options.port, options.token, options.paths,
                                            options.rate, options.seconds))  # fmt: skip
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
