"""Fixtures of the event log's tests: its stores, products and people; for the webhook
tests, a real HTTP receiver in a thread, and deliveries run in-process."""

import json
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db.models import F
from standardwebhooks import Webhook

from events.models import StockEvent, WebhookDelivery, WebhookSubscription
from events.signals import stock_events_committed
from events.webhooks.services import webhooks_sweep
from stock.services import stock_purchase, stock_receive
from stores.models import Role
from tests.factories import ProductFactory, StaffFactory, member
from tests.processes import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: str

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def verified_with(self, secret: str) -> dict:
        """The body, once its signature verifies with ``secret`` (raises otherwise)."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers ``status``;
    ``hold`` (cleared) keeps each request waiting until it is set. ``stop()`` and
    ``start()`` take it off the network and back, on the same port."""

    port: int = field(default_factory=free_port)
    status: int = 204
    received: list[Received] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    def __post_init__(self):
        self.hold.set()
        self.lock = threading.Lock()
        self.waiting = 0
        self.connections = 0  # accepted, over the receiver's life

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks?source=inventory"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keeps connections alive, as receivers do

            def setup(self):
                super().setup()
                with receiver.lock:
                    receiver.connections += 1

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                with receiver.lock:
                    receiver.received.append(Received(dict(self.headers.items()), body))
                    receiver.waiting += 1
                receiver.hold.wait(timeout=60)
                with receiver.lock:
                    receiver.waiting -= 1
                self.send_response(receiver.status)
                if 300 <= receiver.status < 400:
                    self.send_header("Location", f"http://127.0.0.1:{receiver.port}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def seqs(self) -> list[int]:
        return [json.loads(message.body)["seq"] for message in self.received]


@pytest.fixture
def receiver():
    server = Receiver()
    server.start()
    try:
        yield server
    finally:
        server.hold.set()
        server.stop()


@pytest.fixture
def webhook_settings(settings):
    """Receivers on 127.0.0.1 allowed, deliveries attempted in this process (in either
    mode), a short timeout."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    return settings


def commit_events(*events) -> None:
    """What ``stock.services`` does after a commit that wrote events."""
    stock_events_committed.send(sender=None, events=list(events))


def time_passes(seconds: float) -> None:
    """Every scheduled attempt, hold and lease ends ``seconds`` sooner (as if that time
    had passed), then beat's sweep runs."""
    earlier = timedelta(seconds=seconds)
    WebhookDelivery.objects.filter(next_attempt_at__isnull=False).update(
        next_attempt_at=F("next_attempt_at") - earlier
    )
    for until in ("held_until", "sending_until"):
        WebhookSubscription.objects.filter(**{f"{until}__isnull": False}).update(
            **{until: F(until) - earlier}
        )
    webhooks_sweep()


class StockChanges:
    """Real changes through ``stock.services``, each followed by what its commit sets off
    (the test's own transaction never commits): the events they wrote reach the
    webhooks and the publisher as they do in production. ``signal=False`` makes a
    change whose process died after its commit: written, never announced."""

    def __init__(self, capture_on_commit):
        self.capture_on_commit = capture_on_commit
        self.product = None

    def receive(self, store, quantity: int = 1, *, signal: bool = True) -> StockEvent:
        return self._change(stock_receive, store, quantity, signal)

    def purchase(self, store, quantity: int = 1, *, signal: bool = True) -> StockEvent:
        return self._change(stock_purchase, store, quantity, signal)

    def _change(self, service, store, quantity, signal) -> StockEvent:
        self.product = self.product or ProductFactory(sku="HOOKED")
        if signal:
            with self.capture_on_commit(execute=True):
                service(store=store, product=self.product, quantity=quantity)
        else:
            service(store=store, product=self.product, quantity=quantity)
        return StockEvent.objects.filter(store=store).order_by("-seq").first()


@pytest.fixture
def stock_changes(django_capture_on_commit_callbacks) -> StockChanges:
    return StockChanges(django_capture_on_commit_callbacks)


# berlin, hamburg, tee (TEE) and berlin's viewer come from the root conftest.


@pytest.fixture
def mug(db):
    return ProductFactory(sku="MUG")


@pytest.fixture
def outsider(hamburg):
    """A manager of another store."""
    return member("outsider", hamburg, Role.MANAGER)


@pytest.fixture
def staff(db):
    return StaffFactory(username="staff")
