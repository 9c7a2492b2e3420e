"""POST /stores/{code}/stock/bulk/ and GET /jobs/{id}/: items checked in the request
(400 listing every bad one, nothing queued), the job stored and answered 202, applied by
the worker (``bulk_job_run``, which the tests call themselves: the job is queued once the
request commits, and a test's transaction never commits), and followed through the job
resource while queued, while running and at the end."""

import json
import uuid

import pytest
from django.db import connection

from catalog.models import Product
from stock.models import BulkJob, BulkJobStatus, Movement, MovementKind
from stock.services import MAX_BULK_ITEMS, StockLine, bulk_job_run, reservation_create
from stock.services import stock_receive as receive
from stores.models import Membership, Role
from tests.api import api_client, assert_error
from tests.factories import MembershipFactory, ProductFactory, StaffFactory, UserFactory

from .helpers import assert_level_matches_ledger, movements_of

BULK = "/api/v1/stores/berlin-01/stock/bulk/"
SKU_PROBLEM = "sku must be a string of 1 to 64 characters, without NUL."


@pytest.fixture
def products(berlin):
    """Five products, the first three stocked in berlin-01 with 5 units each."""
    products = [ProductFactory(sku=f"BULK-{n}") for n in range(5)]
    for product in products[:3]:
        receive(store=berlin, product=product, quantity=5)
    return products


def post(client, body, **headers):
    return client.post(BULK, body, format="json", **headers)


def job_of(response) -> BulkJob:
    assert response.status_code == 202, response.content
    return BulkJob.objects.get(pk=response.json()["job"])


def run(response) -> dict:
    """What a worker does with the job the response accepted; returns the job's GET."""
    job = job_of(response)
    bulk_job_run(job.pk)
    return api_client(job.created_by).get(response["Location"]).json()


def on_hand(berlin, products) -> list[int | None]:
    levels = {level.product_id: level.on_hand for level in berlin.stock_levels.all()}
    return [levels.get(product.pk) for product in products]


# --- Accepted and applied --------------------------------------------------------------


def test_a_set_job_is_accepted_queued_and_then_applied(manager_api, berlin, products, manager):
    items = [{"sku": p.sku, "on_hand": 10 + n} for n, p in enumerate(products)]

    response = post(manager_api, {"mode": "set", "items": items})

    job = job_of(response)
    status_url = f"http://testserver/api/v1/jobs/{job.pk}/"
    assert response.json() == {"job": str(job.pk), "status_url": status_url}
    assert response["Location"] == status_url
    assert (job.mode, job.error_policy, job.created_by, job.total) == (
        "set", "reject_all", manager, 5
    )  # fmt: skip
    queued = manager_api.get(status_url)
    assert queued.status_code == 200
    assert queued.json() == {
        "id": str(job.pk),
        "store": "berlin-01",
        "status": "queued",
        "total": 5,
        "applied": 0,
        "failed": 0,
        "errors": [],
        "created_at": queued.json()["created_at"],
        "finished_at": None,
    }
    assert on_hand(berlin, products) == [5, 5, 5, None, None]  # nothing applied yet

    done = run(response)

    assert (done["status"], done["total"], done["applied"], done["failed"], done["errors"]) == (
        "done", 5, 5, 0, []
    )  # fmt: skip
    assert done["finished_at"] is not None
    assert on_hand(berlin, products) == [10, 11, 12, 13, 14]
    for product in products:
        assert_level_matches_ledger(berlin, product)
        last = movements_of(berlin, product)[-1]
        assert (last.kind, last.reference, last.actor) == (
            MovementKind.SET, f"bulk:{job.pk}", manager
        )  # fmt: skip


def test_an_adjust_job_records_its_reason(manager_api, berlin, products):
    items = [{"sku": p.sku, "delta": -2} for p in products[:3]]

    done = run(post(manager_api, {"mode": "adjust", "reason": "damaged", "items": items}))

    assert (done["status"], done["applied"], done["failed"]) == ("done", 3, 0)
    assert on_hand(berlin, products[:3]) == [3, 3, 3]
    assert {m.reason for p in products[:3] for m in movements_of(berlin, p)[1:]} == {"damaged"}


def test_an_adjust_job_without_a_reason_is_a_correction(manager_api, berlin, products):
    done = run(post(manager_api, {"mode": "adjust", "items": [{"sku": "BULK-3", "delta": 4}]}))

    assert (done["status"], done["applied"]) == ("done", 1)
    movement = movements_of(berlin, products[3])[-1]
    assert (movement.kind, movement.delta_on_hand, movement.reason) == (
        MovementKind.ADJUST, 4, "correction"
    )  # fmt: skip


def test_reject_all_applies_nothing_when_an_item_fails_and_lists_it(manager_api, berlin, products):
    items = [
        {"sku": "BULK-0", "delta": -2},
        {"sku": "BULK-1", "delta": -9},  # 5 on hand
        {"sku": "BULK-3", "delta": 4},
    ]

    done = run(post(manager_api, {"mode": "adjust", "items": items}))

    assert (done["status"], done["total"], done["applied"], done["failed"]) == (
        "failed", 3, 0, 1
    )  # fmt: skip
    assert done["errors"] == [
        {
            "index": 1,
            "sku": "BULK-1",
            "code": "insufficient_stock",
            "detail": "on_hand would be -4, below the 0 reserved (available 5).",
        }
    ]
    assert done["finished_at"] is not None
    # BULK-3's level was created for the job, empty, as a level never stocked reads.
    assert on_hand(berlin, products) == [5, 5, 5, 0, None]
    assert Movement.objects.filter(reference__startswith="bulk:").count() == 0


def test_skip_failed_applies_the_rest_and_lists_each_failure(manager_api, berlin, products):
    reservation_create(store=berlin, lines=[StockLine(products[2], 4)])
    items = [
        {"sku": "BULK-0", "on_hand": 8, "expected_on_hand": 5},
        {"sku": "BULK-1", "on_hand": 8, "expected_on_hand": 4},  # it is 5
        {"sku": "BULK-2", "on_hand": 3},  # 4 are reserved
        {"sku": "BULK-3", "on_hand": 2},
    ]

    done = run(post(manager_api, {"mode": "set", "error_policy": "skip_failed", "items": items}))

    assert (done["status"], done["total"], done["applied"], done["failed"]) == ("done", 4, 2, 2)
    assert [(e["index"], e["sku"], e["code"]) for e in done["errors"]] == [
        (1, "BULK-1", "version_mismatch"),
        (2, "BULK-2", "insufficient_stock"),
    ]
    assert all(isinstance(e["detail"], str) and e["detail"] for e in done["errors"])
    assert on_hand(berlin, products) == [8, 5, 5, 2, None]


def test_skip_failed_with_nothing_failing_applies_every_item(manager_api, berlin, products):
    items = [{"sku": p.sku, "delta": 1} for p in products]

    done = run(
        post(
            manager_api,
            {"mode": "adjust", "reason": "found", "error_policy": "skip_failed", "items": items},
        )
    )

    assert (done["status"], done["applied"], done["failed"], done["errors"]) == (
        "done", 5, 0, []
    )  # fmt: skip
    assert on_hand(berlin, products) == [6, 6, 6, 1, 1]


def test_a_client_polling_while_the_worker_runs_sees_the_batches_done(
    manager_api, berlin, products, settings
):
    """Before each batch the worker locks its job again (``status IN (queued,
    running)``); the job resource then shows it running with the batches before."""
    settings.BULK_BATCH_SIZE = 2
    items = [{"sku": p.sku, "delta": 1} for p in products]
    response = post(
        manager_api,
        {"mode": "adjust", "reason": "found", "error_policy": "skip_failed", "items": items},
    )
    job = job_of(response)
    polled = []

    def poll_when_the_worker_locks_its_job(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if '"stock_bulkjob"."status" IN' in sql:
            answer = manager_api.get(response["Location"]).json()
            polled.append((answer["status"], answer["applied"], answer["finished_at"]))
        return result

    with connection.execute_wrapper(poll_when_the_worker_locks_its_job):
        bulk_job_run(job.pk)

    assert polled == [
        ("queued", 0, None),
        ("running", 0, None),
        ("running", 2, None),
        ("running", 4, None),
    ]
    job.refresh_from_db()
    assert (job.status, job.applied) == (BulkJobStatus.DONE, 5)


def test_in_the_embedded_mode_the_job_has_run_when_the_request_returns(
    manager_api, berlin, products, settings, django_capture_on_commit_callbacks
):
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.skip("the services mode queues the job for a real worker")
    items = [{"sku": "BULK-3", "on_hand": 7}]

    with django_capture_on_commit_callbacks(execute=True):
        response = post(manager_api, {"mode": "set", "items": items})

    job = manager_api.get(response["Location"]).json()
    assert (job["status"], job["applied"]) == ("done", 1)
    assert on_hand(berlin, products[3:4]) == [7]


# --- Refused up front: 400 listing every bad item ---------------------------------------


def test_every_bad_item_is_listed_and_nothing_is_queued(manager_api, berlin, products):
    Product.objects.filter(sku="BULK-4").update(is_active=False)
    items = [
        {"sku": "BULK-0", "on_hand": 1},
        {"sku": "NO-SUCH", "on_hand": 1},
        {"sku": "BULK-4", "on_hand": 1},
        {"sku": "BULK-1", "on_hand": -1},
        {"sku": "BULK-1", "on_hand": 1_000_001},
        {"sku": "BULK-2", "on_hand": 1.5},
        {"sku": "BULK-2", "on_hand": "3"},
        {"sku": "BULK-2", "on_hand": True},
        {"sku": "BULK-2", "on_hand": None},
        {"sku": "BULK-3"},
        {"sku": "BULK-0", "on_hand": 2},
        {"sku": "BULK-3", "on_hand": {"nested": [{"junk": None}]}},
        {"sku": "BULK-3", "on_hand": 1, "colour": "red"},
        {"sku": "", "on_hand": 1},
        {"sku": "BULK-3", "on_hand": 1, "expected_on_hand": False},
    ]

    response = post(manager_api, {"mode": "set", "items": items})

    body = assert_error(response, 400, "invalid")
    assert body["detail"] == "14 of the items cannot be applied; nothing was queued."
    on_hand_problem = "on_hand must be a whole number from 0 to 1,000,000."
    assert body["errors"] == [
        {"index": 1, "sku": "NO-SUCH", "code": "not_found", "detail": "Unknown SKU 'NO-SUCH'."},
        {
            "index": 2,
            "sku": "BULK-4",
            "code": "product_inactive",
            "detail": "Product BULK-4 is deactivated.",
        },
        *[
            {"index": index, "sku": sku, "code": "invalid", "detail": on_hand_problem}
            for index, sku in [
                (3, "BULK-1"),
                (4, "BULK-1"),
                (5, "BULK-2"),
                (6, "BULK-2"),
                (7, "BULK-2"),
                (8, "BULK-2"),
                (9, "BULK-3"),
            ]
        ],  # fmt: skip
        {
            "index": 10,
            "sku": "BULK-0",
            "code": "duplicate_sku",
            "detail": "SKU BULK-0 is also item 0.",
        },
        {"index": 11, "sku": "BULK-3", "code": "invalid", "detail": on_hand_problem},
        {
            "index": 12,
            "sku": "BULK-3",
            "code": "invalid",
            "detail": "Unknown field(s) for a set item: colour.",
        },
        {"index": 13, "sku": "", "code": "invalid", "detail": SKU_PROBLEM},
        {
            "index": 14,
            "sku": "BULK-3",
            "code": "invalid",
            "detail": "expected_on_hand must be a whole number from 0 to 1,000,000.",
        },
    ]
    assert not BulkJob.objects.exists()
    assert on_hand(berlin, products) == [5, 5, 5, None, None]


@pytest.mark.parametrize(
    "sku",
    [{"nested": [{"junk": None}]}, ["BULK-0"], 7, None],
    ids=["object", "list", "int", "null"],
)
def test_a_sku_that_is_no_string_is_listed_without_echoing_it(manager_api, products, sku):
    items = [{"sku": "BULK-0", "on_hand": 1}, {"sku": sku, "on_hand": 1}]

    response = post(manager_api, {"mode": "set", "items": items})

    assert assert_error(response, 400, "invalid")["errors"] == [
        {"index": 1, "sku": None, "code": "invalid", "detail": SKU_PROBLEM}
    ]
    assert not BulkJob.objects.exists()


@pytest.mark.parametrize(
    "delta, reason, problem",
    [
        (0, "correction", "delta must be a non-zero whole number"),
        (-1_000_001, "correction", "delta must be a non-zero whole number"),
        (False, "correction", "delta must be a non-zero whole number"),
        (2, "damaged", "A damaged adjustment lowers stock"),
        (-2, "found", "A found adjustment raises stock"),
    ],
)
def test_a_bad_delta_is_listed(manager_api, products, delta, reason, problem):
    items = [{"sku": "BULK-0", "delta": 1}, {"sku": "BULK-1", "delta": delta}]
    if reason in ("damaged", "found"):
        items = [{"sku": "BULK-1", "delta": delta}]

    response = post(manager_api, {"mode": "adjust", "reason": reason, "items": items})

    [error] = assert_error(response, 400, "invalid")["errors"]
    assert (error["sku"], error["code"]) == ("BULK-1", "invalid")
    assert error["detail"].startswith(problem), error
    assert not BulkJob.objects.exists()


def test_a_set_field_in_an_adjust_job_is_listed(manager_api, products):
    response = post(manager_api, {"mode": "adjust", "items": [{"sku": "BULK-0", "on_hand": 1}]})

    assert assert_error(response, 400, "invalid")["errors"] == [
        {
            "index": 0,
            "sku": "BULK-0",
            "code": "invalid",
            "detail": "Unknown field(s) for a adjust item: on_hand.",
        }
    ]


ITEM = {"sku": "BULK-0", "on_hand": 1}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"items": [ITEM]}, "mode"),
        ({"mode": "replace", "items": [ITEM]}, "mode"),
        ({"mode": None, "items": [ITEM]}, "mode"),
        ({"mode": "set"}, "items"),
        ({"mode": "set", "items": []}, "items"),
        ({"mode": "set", "items": None}, "items"),
        ({"mode": "set", "items": ITEM}, "items"),
        ({"mode": "set", "items": "BULK-0"}, "items"),
        ({"mode": "set", "items": [ITEM, "BULK-1"]}, "items"),
        ({"mode": "set", "items": [ITEM, [ITEM]]}, "items"),
        ({"mode": "set", "items": [ITEM], "reason": "stolen"}, "reason"),
        ({"mode": "set", "items": [ITEM], "reason": ["found"]}, "reason"),
        ({"mode": "set", "items": [ITEM], "error_policy": "best_effort"}, "error_policy"),
        ({"mode": "set", "items": [ITEM], "error_policy": True}, "error_policy"),
    ],
)
def test_a_bad_envelope_names_its_field(manager_api, products, body, field):
    response = post(manager_api, body)

    assert list(assert_error(response, 400, "invalid")["errors"]) == [field]
    assert not BulkJob.objects.exists()


def test_a_body_that_is_no_object_is_refused(manager_api, products):
    response = post(manager_api, [ITEM])

    assert list(assert_error(response, 400, "invalid")["errors"]) == ["non_field_errors"]
    assert not BulkJob.objects.exists()


def test_a_deactivated_store_takes_no_job(manager_api, berlin, products):
    berlin.is_active = False
    berlin.save(update_fields=["is_active"])

    response = post(manager_api, {"mode": "set", "items": [ITEM]})

    assert_error(response, 409, "store_inactive")
    assert not BulkJob.objects.exists()


# --- 10,000 items, and the body they take ------------------------------------------------


def longest_items(count: int) -> list[dict]:
    """``count`` adjust items as long as items get: 64-character SKUs, every number at
    its longest."""
    return [
        {"sku": f"{n:05}".rjust(64, "S"), "delta": -1_000_000, "expected_on_hand": 1_000_000}
        for n in range(count)
    ]


def test_ten_thousand_of_the_longest_items_are_accepted_however_laid_out(manager_api, berlin):
    items = longest_items(MAX_BULK_ITEMS)
    Product.objects.bulk_create(
        [Product(sku=item["sku"], name="Bulk", price="1.00") for item in items]
    )
    body = json.dumps(
        {"mode": "adjust", "reason": "correction", "error_policy": "skip_failed", "items": items},
        indent=4,
    )

    response = manager_api.post(BULK, body, content_type="application/json")

    job = job_of(response)
    assert (job.total, job.status, len(job.items)) == (MAX_BULK_ITEMS, "queued", MAX_BULK_ITEMS)
    assert 1_700_000 < len(body) < 1_900_000  # what the setting's comment says


def test_one_item_more_is_refused(manager_api, products):
    items = [{"sku": f"BULK-{n}", "on_hand": 1} for n in range(MAX_BULK_ITEMS + 1)]

    response = post(manager_api, {"mode": "set", "items": items})

    assert assert_error(response, 400, "invalid")["errors"] == {
        "items": ["Ensure this field has no more than 10000 elements."]
    }
    assert not BulkJob.objects.exists()


def test_the_bulk_body_limit_is_its_own(manager_api, products, settings):
    """A bulk body is measured against BULK_MAX_BODY_BYTES, every other body against
    DATA_UPLOAD_MAX_MEMORY_SIZE."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    settings.BULK_MAX_BODY_BYTES = 1000
    body = {"mode": "set", "items": [{"sku": "BULK-3", "on_hand": 4}], "reason": "correction"}
    padded = json.dumps(body, indent=30)
    assert 100 < len(padded) <= 1000

    accepted = manager_api.post(BULK, padded, content_type="application/json")
    elsewhere = manager_api.post(
        "/api/v1/stores/berlin-01/stock/BULK-3/set/",
        json.dumps({"on_hand": 4, "note": "n" * 200}),
        content_type="application/json",
    )

    assert job_of(accepted).total == 1
    assert assert_error(elsewhere, 413, "payload_too_large")["detail"] == (
        "The request body is larger than the limit of 100 bytes."
    )


def test_a_bulk_body_over_its_limit_is_413_and_queues_nothing(manager_api, products, settings):
    settings.BULK_MAX_BODY_BYTES = 1000
    body = json.dumps({"mode": "set", "items": [{"sku": "BULK-3", "on_hand": 4}] * 40})
    assert len(body) > 1000

    response = manager_api.post(BULK, body, content_type="application/json")

    assert assert_error(response, 413, "payload_too_large") == {
        "detail": "The request body is larger than the limit of 1000 bytes.",
        "code": "payload_too_large",
    }
    assert not BulkJob.objects.exists()


def test_the_default_bulk_limit_is_above_every_other_body(settings):
    assert settings.BULK_MAX_BODY_BYTES == 4 * 1024 * 1024
    assert settings.BULK_MAX_BODY_BYTES > settings.DATA_UPLOAD_MAX_MEMORY_SIZE


# --- Idempotency-Key ------------------------------------------------------------------------


def test_a_retry_with_the_same_key_gets_the_same_answer_and_no_second_job(
    manager_api, berlin, products
):
    body = {"mode": "set", "items": [{"sku": "BULK-3", "on_hand": 4}]}

    first = post(manager_api, body, HTTP_IDEMPOTENCY_KEY="erp-sync-1")
    retried = post(manager_api, body, HTTP_IDEMPOTENCY_KEY="erp-sync-1")
    other_body = post(
        manager_api, {**body, "reason": "correction"}, HTTP_IDEMPOTENCY_KEY="erp-sync-1"
    )

    assert (first.status_code, retried.status_code) == (202, 202)
    assert retried.json() == first.json()
    assert retried["Location"] == first["Location"]
    assert retried["Idempotent-Replayed"] == "true"
    assert_error(other_body, 422, "idempotency_key_reused")
    assert BulkJob.objects.count() == 1


def test_a_refusal_is_replayed_too(manager_api, products):
    body = {"mode": "set", "items": [{"sku": "NO-SUCH", "on_hand": 4}]}

    first = post(manager_api, body, HTTP_IDEMPOTENCY_KEY="erp-sync-2")
    ProductFactory(sku="NO-SUCH")
    retried = post(manager_api, body, HTTP_IDEMPOTENCY_KEY="erp-sync-2")

    assert assert_error(retried, 400, "invalid") == first.json()
    assert not BulkJob.objects.exists()


# --- Who may submit, who may follow ---------------------------------------------------------


@pytest.fixture
def job(manager_api, berlin, products):
    """A job of berlin-01 that its manager submitted."""
    return job_of(post(manager_api, {"mode": "set", "items": [ITEM]}))


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CLERK])
def test_submitting_needs_the_manager_role(berlin, products, role):
    user = UserFactory()
    MembershipFactory(user=user, store=berlin, role=role)

    response = post(api_client(user), {"mode": "set", "items": [ITEM]})

    assert_error(response, 403, "permission_denied")
    assert not BulkJob.objects.exists()


def test_the_creator_follows_the_job_while_they_hold_a_role_in_its_store(manager_api, job):
    url = f"/api/v1/jobs/{job.pk}/"
    Membership.objects.filter(user=job.created_by).update(role=Role.VIEWER)

    demoted = manager_api.get(url)
    Membership.objects.filter(user=job.created_by).delete()
    removed = manager_api.get(url)

    assert (demoted.status_code, demoted.json()["id"]) == (200, str(job.pk))
    assert_error(removed, 404, "not_found")


def test_another_manager_of_the_store_and_staff_follow_the_job(berlin, job):
    other_manager = UserFactory()
    MembershipFactory(user=other_manager, store=berlin, role=Role.MANAGER)
    url = f"/api/v1/jobs/{job.pk}/"

    assert api_client(other_manager).get(url).status_code == 200
    assert api_client(StaffFactory(permissions=["stock.view_bulkjob"])).get(url).status_code == 200
    assert (
        api_client(StaffFactory(permissions=["stock.change_stocklevel"])).get(url).status_code
        == 200
    )


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CLERK])
def test_other_members_of_the_store_get_the_404_of_a_job_that_does_not_exist(berlin, job, role):
    user = UserFactory()
    MembershipFactory(user=user, store=berlin, role=role)
    client = api_client(user)

    hidden = client.get(f"/api/v1/jobs/{job.pk}/")
    missing = client.get(f"/api/v1/jobs/{uuid.uuid4()}/")

    assert_error(hidden, 404, "not_found")
    assert hidden.json() == missing.json() == {"detail": "No such job.", "code": "not_found"}


@pytest.mark.parametrize("job_id", ["not-a-uuid", "1", f"{uuid.UUID(int=0)}x", "%00"])
def test_a_malformed_job_id_is_a_json_404(manager_api, job_id):
    assert_error(manager_api.get(f"/api/v1/jobs/{job_id}/"), 404, "not_found")


def test_the_job_is_read_without_its_items_and_in_a_bounded_number_of_queries(
    manager_api, job, django_assert_max_num_queries
):
    """The token's user, the job with its store, the role in the store: each at most
    one query (the lookup cache may answer the first and the last)."""
    with django_assert_max_num_queries(3) as queries:
        response = manager_api.get(f"/api/v1/jobs/{job.pk}/")

    assert response.status_code == 200
    job_query = next(q["sql"] for q in queries.captured_queries if '"stock_bulkjob"' in q["sql"])
    assert '"stock_bulkjob"."items"' not in job_query


# --- Browsable ------------------------------------------------------------------------------


def test_both_endpoints_are_browsable_and_named(client, manager, job):
    client.force_login(manager)

    form = client.get(BULK, HTTP_ACCEPT="text/html")
    page = client.get(f"/api/v1/jobs/{job.pk}/", HTTP_ACCEPT="text/html")

    assert form.status_code == 405  # POST only, but the page offers its form
    assert [name for name, _ in form.context["breadcrumblist"]] == [
        "API root", "Stores", "Store", "Stock levels", "Bulk jobs"
    ]  # fmt: skip
    assert "<h1>Bulk jobs</h1>" in form.text
    assert 'id="post-generic-content-form"' in form.text
    assert page.status_code == 200
    assert [name for name, _ in page.context["breadcrumblist"]] == ["API root", "Bulk job"]
    assert str(job.pk) in page.text
