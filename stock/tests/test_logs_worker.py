"""A task that a request sends through the broker logs, in the worker, with the request's
id, user and store, and the audit events it records carry the same id.

The deployment's own ``bin/run worker`` (DEBUG off, LOG_FORMAT left to its default: JSON)
applies a bulk job that a manager posts over the API (the test client, in this process);
the request's lines are read here, the worker's from its output.
"""

import io
import json
import logging
import os
import re
import uuid

import pytest

from audit.models import AuditEvent
from inventory_site import logs
from stock.models import BulkJob, BulkJobStatus, StockLevel
from stock.services import stock_seed_levels
from tests.processes import read, wait_until

pytestmark = [
    pytest.mark.services,
    pytest.mark.postgresql,
    pytest.mark.django_db(transaction=True),
]

RECEIVED = re.compile(r"^Task stock\.tasks\.apply_bulk_job\[([\w-]+)\] received$")


def worker_lines(log) -> list[dict]:
    """Every line the worker wrote, each parsed as JSON (which fails on any other: its
    start-up banner is off, Python's warnings are log lines)."""
    return [json.loads(line) for line in read(log).splitlines()]


def test_a_bulk_jobs_worker_lines_and_audit_events_carry_the_request_that_sent_it(
    start, manager_api, berlin, tee
):
    stock_seed_levels(stores=[berlin], products=[tee])
    hostname = f"logs-{uuid.uuid4().hex[:8]}@%h"
    worker_log = start("worker", "--hostname", hostname, "--concurrency", "1")
    ready = f"{hostname.replace('%h', os.uname().nodename)} ready."
    assert wait_until(lambda: ready in read(worker_log), timeout=30, interval=0.2), read(worker_log)
    here = io.StringIO()
    handler = logging.StreamHandler(here)
    handler.setFormatter(logs.formatter("json"))
    logging.getLogger().addHandler(handler)
    try:
        answer = manager_api.post(
            "/api/v1/stores/berlin-01/stock/bulk/",
            {"mode": "set", "items": [{"sku": "TEE", "on_hand": 7}]},
            format="json",
            HTTP_X_REQUEST_ID="bulk-import-42",
        )
        logging.getLogger("tests.logs").warning("sent")  # after the request: none of its fields
    finally:
        logging.getLogger().removeHandler(handler)
    assert answer.status_code == 202, answer.content
    job = BulkJob.objects.get(pk=answer.json()["job"])

    assert wait_until(
        lambda: BulkJob.objects.get(pk=job.pk).status == BulkJobStatus.DONE, timeout=30
    ), read(worker_log)[-3000:]
    assert StockLevel.objects.get(store=berlin, product=tee).on_hand == 7
    # The job's movement reaches the audit log through the worker's relay.
    assert wait_until(
        lambda: AuditEvent.objects.filter(object_type="stock.movement").exists(), timeout=30
    ), read(worker_log)[-3000:]

    [event] = AuditEvent.objects.filter(object_type="stock.movement").exclude(action="stock.seed")
    assert (event.action, event.request_id, event.actor_username, event.store_id) == (
        "stock.set",
        "bulk-import-42",
        "manager",
        berlin.pk,
    )
    lines = worker_lines(worker_log)
    [task_id] = [m[1] for line in lines if (m := RECEIVED.match(line["event"]))]
    task_lines = [line for line in lines if line.get("task_id") == task_id]
    assert [line["event"].split(" in ")[0] for line in task_lines] == [
        f"Task stock.tasks.apply_bulk_job[{task_id}] succeeded"
    ]
    assert {
        (line.get("request_id"), line.get("user"), line.get("store"), line["task"])
        for line in task_lines
    } == {("bulk-import-42", "manager", "berlin-01", "stock.tasks.apply_bulk_job")}
    # Lines of tasks no request sent (the start-up sweeps) carry no request's fields.
    sweeps = [line for line in lines if line.get("task") == "stock.tasks.resume_bulk_jobs"]
    assert sweeps and all("request_id" not in line for line in sweeps)
    # This process wrote no line during the request (a 202); the one after it has none
    # of the request's fields.
    [after] = [json.loads(line) for line in here.getvalue().splitlines()]
    assert after["event"] == "sent" and "request_id" not in after
