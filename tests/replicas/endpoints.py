"""What the replica tests ask of a web process: every read endpoint, and the writes,
with the status each answers."""

import uuid

# Every GET of the API and the pages over the shop of ``conftest.shop``, by token.
API_READS = [
    "/api/v1/",
    "/api/v1/stores/",
    "/api/v1/stores/berlin-01/",
    "/api/v1/stores/berlin-01/members/",
    "/api/v1/stores/berlin-01/stock/",
    "/api/v1/stores/berlin-01/stock/?low_stock=true",
    "/api/v1/stores/berlin-01/stock/HOODIE/",
    "/api/v1/stores/berlin-01/movements/",
    "/api/v1/stores/berlin-01/movements/?sku=HOODIE",
    "/api/v1/stores/berlin-01/events/",
    "/api/v1/stores/berlin-01/reservations/",
    "/api/v1/audit/",
    "/api/v1/audit/?store=berlin-01",
    "/api/v1/products/",
    "/api/v1/products/HOODIE/",
    "/api/v1/products/HOODIE/availability/",
]
# The admin's pages and the low-stock page, by a logged-in staff user's session.
PAGE_READS = [
    "/admin/",
    "/admin/stock/stocklevel/",
    "/admin/stock/movement/",
    "/admin/stock/reservation/",
    "/admin/audit/auditevent/",
    "/admin/events/stockevent/",
    "/admin/stores/store/",
    "/stores/berlin-01/low-stock/",
]


def sale_deciding_writes(web) -> list[tuple[str, int, int]]:
    """Every kind of write that decides on stock, one after the other, each with a new
    Idempotency-Key but the replayed purchase: (what, status expected, status answered)."""
    base = "/api/v1/stores/berlin-01"
    answers = []

    def post(what, path, body, expected, key=None):
        answer = web.post(path, body, headers={"Idempotency-Key": key or uuid.uuid4().hex})
        answers.append((what, expected, answer.status))
        return answer

    sale = uuid.uuid4().hex
    post("purchase", f"{base}/stock/HOODIE/purchase/", {"quantity": 1}, 200, sale)
    post("purchase replayed", f"{base}/stock/HOODIE/purchase/", {"quantity": 1}, 200, sale)
    post("purchase refused", f"{base}/stock/CAP/purchase/", {"quantity": 10_000}, 409)
    post("receive", f"{base}/stock/CAP/receive/", {"quantity": 3}, 200)
    post("adjust", f"{base}/stock/CAP/adjust/", {"delta": -1, "reason": "damaged"}, 200)
    post("count", f"{base}/stock/CAP/set/", {"on_hand": 30}, 200)
    lines = [{"sku": "HOODIE", "quantity": 2}, {"sku": "CAP", "quantity": 1}]
    held = post("reservation", f"{base}/reservations/", {"lines": lines}, 201)
    post("commit", f"{base}/reservations/{held.body.get('id')}/commit/", {}, 200)
    lines = [{"sku": "CAP", "quantity": 1}]
    held = post("reservation", f"{base}/reservations/", {"lines": lines}, 201)
    post("release", f"{base}/reservations/{held.body.get('id')}/release/", {}, 200)
    lines = [{"sku": "HOODIE", "quantity": 1}]
    post("transfer", f"{base}/transfers/", {"to_store": "hamburg-01", "lines": lines}, 200)
    bulk = {"mode": "adjust", "reason": "found", "items": [{"sku": "CAP", "delta": 2}]}
    job = post("bulk job", f"{base}/stock/bulk/", bulk, 202)
    status = web.get(f"/api/v1/jobs/{job.body.get('job')}/")
    answers.append(("bulk job done", ("done", 200), (status.body.get("status"), status.status)))
    return answers
