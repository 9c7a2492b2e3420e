import subprocess
import uuid

import pytest

from tests.api import api_client
from tests.factories import ProductFactory, StoreFactory, UserFactory
from tests.processes import ROOT, project_env, redis_url, stop, url_of_the_test_database


@pytest.fixture
def store(db):
    return StoreFactory(code="berlin-01")


@pytest.fixture
def other_store(db):
    return StoreFactory(code="hamburg-01")


@pytest.fixture
def product(db):
    return ProductFactory(sku="TEE-RED-M")


@pytest.fixture
def other_product(db):
    return ProductFactory(sku="MUG-BLUE")


@pytest.fixture
def clerk(db):
    return UserFactory(username="clerk")


# --- The API tests' manager (berlin, tee and manager: the root conftest) ---------------


@pytest.fixture
def manager_api(manager):
    """An API client with the manager's token."""
    return api_client(manager)


@pytest.fixture
def without_redis(settings):
    """The cache is the process's memory, as in the embedded mode (in either mode): no
    flash-sale gate tokens, whose only home is Redis."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


# --- The deployment's own processes on the test database -----------------------------


@pytest.fixture
def start(transactional_db, tmp_path):
    """Start a ``bin/run`` command on the test database, with the settings given as
    keywords (``start("worker", BULK_BATCH_SIZE="50")``); returns its log file. Every
    process group started is stopped at teardown, before the test database is flushed."""
    env = project_env(
        DATABASE_URL=url_of_the_test_database(),
        REDIS_URL=redis_url(),
        DEBUG="false",
        SECRET_KEY="stock-worker-tests-" + "x" * 40,
        CACHE_KEY_PREFIX=f"stock-worker-{uuid.uuid4().hex}",
        LOG_LEVEL="INFO",
    )
    processes = []

    def start_process(*args: str, **settings: str):
        log = tmp_path / f"{args[0]}-{len(processes)}.log"
        with open(log, "w") as output:
            process = subprocess.Popen(
                ["bin/run", *args],
                cwd=ROOT,
                env={**env, **settings},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(process)
        start_process.processes = processes
        return log

    yield start_process
    for process in reversed(processes):  # beat first, so it sends nothing more
        stop(process)
