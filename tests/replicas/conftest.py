"""Fixtures of the replica tests: the replica, a shop on the test database, and
``bin/run web`` reading from the replica (or from a replica address where nothing
answers)."""

import http.client
import json
import os
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from stock.services import stock_receive
from stores.models import Role
from tests.factories import TEST_PASSWORD, ProductFactory, StaffFactory, StoreFactory, member
from tests.processes import (
    ProjectProcesses,
    free_port,
    machine_lock,
    project_env,
    url_of_the_test_database,
)

from .replica import REPLICA_URL, Replica, require_replica


@pytest.fixture
def replica(transactional_db):
    """The streaming replica, caught up with the primary; its replay resumed at the end
    whatever the test did. One test at a time has it: a test pauses its replay, stops
    its server or cuts its stream, which another test worker's would not expect."""
    require_replica()
    with machine_lock("replica"):
        replica = Replica(REPLICA_URL, connection.settings_dict["NAME"])
        replica.check()
        try:
            yield replica
        finally:
            try:
                replica.resume()
            finally:
                replica.close()


@dataclass
class Shop:
    berlin: object
    hamburg: object
    hoodie: object
    cap: object
    manager: object
    manager_token: str
    staff: object


@pytest.fixture
def shop(transactional_db) -> Shop:
    """Two stores with stock of two products, committed (the web process reads them): a
    manager of both, by token, and a staff user who logs in to the admin."""
    berlin, hamburg = StoreFactory(code="berlin-01"), StoreFactory(code="hamburg-01")
    hoodie, cap = ProductFactory(sku="HOODIE"), ProductFactory(sku="CAP")
    manager = member("manager", berlin, Role.MANAGER)
    member("manager", hamburg, Role.MANAGER)
    for store in (berlin, hamburg):
        for product in (hoodie, cap):
            stock_receive(store=store, product=product, quantity=20, actor=manager)
    staff = StaffFactory(username="staff")
    return Shop(
        berlin, hamburg, hoodie, cap, manager, Token.objects.create(user=manager).key, staff
    )


@dataclass
class Answer:
    status: int
    headers: dict
    body: object

    @property
    def served_by(self) -> str | None:
        return self.headers.get("x-served-by")

    @property
    def token(self) -> str | None:
        return self.headers.get("x-consistency-token")


@dataclass
class Web:
    """A ``bin/run web`` process; requests on new connections, cookies kept per
    ``Web`` (a browser's session)."""

    port: int
    token: str
    cookies: dict = field(default_factory=dict)

    def request(self, method, path, body=None, *, token=None, headers=(), form=None):
        sent = dict(headers)
        if token is not False:
            sent["Authorization"] = f"Token {token or self.token}"
        if body is not None:
            sent["Content-Type"] = "application/json"
            body = json.dumps(body)
        elif form is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode(form)
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        client = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            client.request(method, path, body=body, headers=sent)
            response = client.getresponse()
            content = response.read()
            answer_headers = {name.lower(): value for name, value in response.getheaders()}
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    for morsel in SimpleCookie(value).values():
                        self.cookies[morsel.key] = morsel.value
        finally:
            client.close()
        try:
            parsed = json.loads(content)
        except ValueError:
            parsed = content.decode(errors="replace")
        return Answer(response.status, answer_headers, parsed)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, body, **kwargs):
        return self.request("POST", path, body, **kwargs)

    def log_in_to_the_admin(self, username: str) -> Answer:
        """The admin's login form, as a browser sends it (CSRF cookie and field)."""
        self.get("/admin/login/", token=False)
        return self.request(
            "POST",
            "/admin/login/?next=/admin/",
            token=False,
            form={
                "username": username,
                "password": TEST_PASSWORD,
                "csrfmiddlewaretoken": self.cookies["csrftoken"],
                "next": "/admin/",
            },
            headers={"Referer": f"http://127.0.0.1:{self.port}/admin/login/"},
        )


@pytest.fixture
def start_web(shop, tmp_path):
    """``start_web(replica_url, **settings)``: ``bin/run web`` (one worker: one process's
    replica state) on the test database, reading from ``replica_url``, ``settings``
    overriding the defaults below; stopped at teardown, before the test database is
    flushed. The write guard is on: a statement that writes sent to the replica fails
    its request (500)."""
    started = []

    def start(replica_url: str, **settings: str) -> Web:
        defaults = dict(
            DATABASE_URL=url_of_the_test_database(),
            DATABASE_REPLICA_URLS=replica_url,
            REPLICA_WRITE_GUARD="true",
            # Every request opens and closes its connections: the replica's counters
            # then hold each request's session and transactions as soon as it ends.
            CONN_MAX_AGE="0",
            SECRET_KEY="replica-tests-" + uuid.uuid4().hex * 2,
            ALLOWED_HOSTS="127.0.0.1",
            CACHE_KEY_PREFIX=f"replica-tests-{uuid.uuid4().hex}",
            CELERY_TASK_ALWAYS_EAGER="true",  # no worker: bulk jobs run in the web process
            WEB_CONCURRENCY="1",
            RATELIMIT_ENABLE="false",
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / f"metrics-{len(started)}"),
            # A replica that answers is not to be taken for down: on 2 busy cores (the
            # other test worker's bulk import, the replica replaying its WAL) a
            # connection has taken more than the default second to start.
            REPLICA_CONNECT_TIMEOUT="5",
        )
        env = project_env(**(defaults | settings))
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ["REDIS_URL"]
        processes = ProjectProcesses(env, tmp_path)
        started.append(processes)
        return Web(processes.start_web(f"web-{len(started)}"), shop.manager_token)

    try:
        yield start
    finally:
        for processes in reversed(started):
            processes.stop_all()


def nothing_listens() -> str:
    """A replica address where nothing answers (connections are refused)."""
    return f"postgres://postgres@127.0.0.1:{free_port()}/{connection.settings_dict['NAME']}"
