import re

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.reverse import reverse

from catalog.apis import product_or_404
from catalog.selectors import known_product_id
from inventory_site.api.pagination import CursorPagination
from inventory_site.api.parsers import LimitedJSONParser
from inventory_site.api.schema import ReservationNotActiveSerializer, errors
from inventory_site.api.views import ApiView, validated
from inventory_site.replicas.routing import answer_with_token
from stores.access import known_store_id, store_for
from stores.models import Role, Store

from .cache import stock_level_cache
from .filters import MovementFilter, ReservationFilter, StockLevelFilter
from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .idempotency import idempotently
from .models import BulkJobStatus, Movement, Reservation, StockLevel
from .selectors import (
    bulk_job_for,
    movements_of_store,
    reservations_of_store,
    stock_level_or_zero,
    stock_levels_of_store,
)
from .serializers import (
    BULK_JOB_REQUEST,
    BULK_REFUSAL,
    AdjustSerializer,
    BulkJobAcceptedSerializer,
    BulkJobCreateSerializer,
    BulkJobSerializer,
    MovementSerializer,
    PurchaseSerializer,
    ReceiveSerializer,
    ReorderPointSerializer,
    ReservationCreateSerializer,
    ReservationSerializer,
    SetCountSerializer,
    StockLevelReadSerializer,
    StockLevelSerializer,
    StockOperationResultSerializer,
    TransferResultSerializer,
    TransferSerializer,
    stock_level_body,
)
from .services import (
    StockLine,
    bulk_job_submit,
    reservation_commit,
    reservation_create,
    reservation_release,
    stock_adjust,
    stock_purchase,
    stock_receive,
    stock_set_count,
    stock_set_reorder_point,
    stock_transfer,
)

IDEMPOTENCY_KEY = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    location=OpenApiParameter.HEADER,
    required=False,
    description="1-255 characters; a retry with the same key and body replays the answer.",
)
IF_MATCH = OpenApiParameter(
    "If-Match",
    location=OpenApiParameter.HEADER,
    required=False,
    description='"<version>": refuse with 412 unless the level is still at this version.',
)
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    location=OpenApiParameter.HEADER,
    required=False,
    description='"<version>" (or several, comma-separated): 304 with no body while the '
    "level is still at that version.",
)
NOT_MODIFIED = OpenApiResponse(
    description="The level is still at the version If-None-Match names; no body."
)
ETAG_PATTERN = re.compile(r'\s*(?:W/)?"?(\d{1,18})"?\s*')


def stock_level_response(level: StockLevel, **extra) -> Response:
    """The level as JSON (``StockLevelSerializer``'s fields and ``extra``), with its
    version as the ETag."""
    return Response(stock_level_body(level, **extra), headers={"ETag": f'"{level.version}"'})


def expected_version(request) -> int | None:
    """The version an If-Match header demands; None without one (or with ``*``)."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    match = ETAG_PATTERN.fullmatch(header)
    if match is None:
        raise ValidationError({"If-Match": ['Send the version read from ETag, e.g. "7".']})
    return int(match[1])


def names_version(if_none_match: str | None, version: int) -> bool:
    """Whether an If-None-Match header names ``version``: ``*``, or any tag of its
    comma-separated list, weak (``W/"7"``) or not, as GET compares them (RFC 9110
    13.1.2). A tag that is no version of ours matches nothing."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    for tag in if_none_match.split(","):
        match = ETAG_PATTERN.fullmatch(tag)
        if match is not None and int(match[1]) == version:
            return True
    return False


class StockLevelListApi(ApiView):
    serializer_class = StockLevelSerializer
    filterset_class = StockLevelFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return StockLevel.objects.none()
        return stock_levels_of_store(store_for(self.request.user, self.kwargs["code"]))

    @extend_schema(responses={200: StockLevelSerializer(many=True), **errors(400, 404)})
    def get(self, request, code):
        return self.paginated_response(self.get_queryset(), StockLevelSerializer)


class StockLevelDetailApi(ApiView):
    serializer_class = StockLevelReadSerializer

    def cached_entry_wanted(self, user_id):
        # Read along with the rate limits when this process knows the store and product
        # ids; the view uses it only if its checks arrive at the same level.
        if self.request.method != "GET":
            return None
        store_id = known_store_id(user_id, self.kwargs["code"])
        product_id = known_product_id(self.kwargs["sku"])
        if store_id is None or product_id is None:
            return None
        return stock_level_cache.gate_read(store_id, product_id)

    def get_serializer_class(self):
        # The browsable API builds its PATCH form from this: offer what PATCH takes.
        if self.request is not None and self.request.method == "PATCH":
            return ReorderPointSerializer
        return StockLevelReadSerializer

    @extend_schema(
        parameters=[IF_NONE_MATCH],
        responses={200: StockLevelReadSerializer, 304: NOT_MODIFIED, **errors(404)},
    )
    def get(self, request, code, sku):
        store = store_for(request.user, code)
        product = product_or_404(sku)
        body, hit = stock_level_cache.read(
            store.pk,
            product.pk,
            load=lambda: stock_level_body(stock_level_or_zero(store, product)),
            prefetched=request.gate_read,
        )
        headers = {"ETag": f'"{body["version"]}"', "X-Cache": "HIT" if hit else "MISS"}
        if names_version(request.headers.get("If-None-Match"), body["version"]):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response({**body, "source": "cache" if hit else "database"}, headers=headers)

    @extend_schema(
        request=ReorderPointSerializer,
        responses={200: StockLevelSerializer, **errors(400, 403, 404)},
    )
    def patch(self, request, code, sku):
        store = store_for(request.user, code, role=Role.MANAGER)
        product = product_or_404(sku)
        data = validated(ReorderPointSerializer, request.data)
        level = stock_set_reorder_point(
            store=store, product=product, reorder_point=data["reorder_point"], actor=request.user
        )
        return stock_level_response(level)


class StockOperationApi(ApiView):
    """POST one operation on one stock level; answers 200 with the new level."""

    required_role: Role
    input_serializer: type

    def perform(self, request, store, product, data) -> StockLevel:
        raise NotImplementedError

    def post(self, request, code, sku):
        store = store_for(request.user, code, role=self.required_role)

        def execute():
            product = product_or_404(sku)
            data = validated(self.input_serializer, request.data)
            level = self.perform(request, store, product, data)
            return stock_level_response(level, movement_id=level.movement_id)

        return idempotently(self, request, execute)


def operation_schema(input_serializer, *statuses, parameters=()):
    return extend_schema_view(
        post=extend_schema(
            request=input_serializer,
            parameters=[IDEMPOTENCY_KEY, *parameters],
            responses={
                200: StockOperationResultSerializer,
                **errors(400, 403, 404, 422, *statuses),
            },
        )
    )


@operation_schema(ReceiveSerializer, 409)
class StockReceiveApi(StockOperationApi):
    serializer_class = input_serializer = ReceiveSerializer
    required_role = Role.MANAGER

    def perform(self, request, store, product, data):
        return stock_receive(store=store, product=product, actor=request.user, **data)


@operation_schema(AdjustSerializer, 409)
class StockAdjustApi(StockOperationApi):
    serializer_class = input_serializer = AdjustSerializer
    required_role = Role.MANAGER

    def perform(self, request, store, product, data):
        return stock_adjust(store=store, product=product, actor=request.user, **data)


@operation_schema(SetCountSerializer, 409, 412, parameters=[IF_MATCH])
class StockSetCountApi(StockOperationApi):
    serializer_class = input_serializer = SetCountSerializer
    required_role = Role.MANAGER

    def perform(self, request, store, product, data):
        return stock_set_count(
            store=store,
            product=product,
            expected_version=expected_version(request),
            actor=request.user,
            **data,
        )


@operation_schema(PurchaseSerializer, 409)
class StockPurchaseApi(StockOperationApi):
    serializer_class = input_serializer = PurchaseSerializer
    required_role = Role.CLERK

    def perform(self, request, store, product, data):
        return stock_purchase(store=store, product=product, actor=request.user, **data)


class TransferCreateApi(ApiView):
    serializer_class = TransferSerializer

    @extend_schema(
        request=TransferSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: OpenApiResponse(TransferResultSerializer, "Moved; the levels after."),
            **errors(400, 403, 404, 409, 422),
        },
    )
    def post(self, request, code):
        from_store = store_for(request.user, code, role=Role.MANAGER)
        return idempotently(self, request, lambda: self.transfer(request, from_store))

    def transfer(self, request, from_store):
        data = validated(TransferSerializer, request.data)
        # Any active store may receive: only the source store's manager role is needed.
        to_store = Store.objects.filter(code=data["to_store"], is_active=True).first()
        if to_store is None:
            raise ValidationError({"to_store": ["No such active store."]})
        transfer = stock_transfer(
            from_store=from_store,
            to_store=to_store,
            lines=[StockLine(line["product"], line["quantity"]) for line in data["lines"]],
            note=data["note"],
            actor=request.user,
        )
        body = {
            "reference": transfer.reference,
            "from_store": from_store.code,
            "to_store": to_store.code,
            "lines": transfer.lines,
            "source_levels": transfer.source_levels,
            "destination_levels": transfer.destination_levels,
        }
        return Response(TransferResultSerializer(body).data)


class BulkBodyParser(LimitedJSONParser):
    """A bulk job's body may be larger than any other: 10,000 items (README,
    "Configuration")."""

    limit_setting = "BULK_MAX_BODY_BYTES"


class BulkJobCreateApi(ApiView):
    """POST a bulk job: its items are checked now (400 listing every bad one, nothing
    queued), then it is stored and queued, and the answer points at its progress."""

    serializer_class = BulkJobCreateSerializer
    parser_classes = [BulkBodyParser]

    @extend_schema(
        request=BULK_JOB_REQUEST,
        parameters=[
            IDEMPOTENCY_KEY,
            OpenApiParameter(
                "Location",
                location=OpenApiParameter.HEADER,
                response=[202],
                description="The job's status_url.",
            ),
        ],
        responses={
            202: OpenApiResponse(BulkJobAcceptedSerializer, "Stored and queued for a worker."),
            **errors(400, 403, 404, 409, 422),
            400: BULK_REFUSAL,
        },
    )
    def post(self, request, code):
        store = store_for(request.user, code, role=Role.MANAGER)
        response = idempotently(self, request, lambda: self.submit(request, store))
        if response.status_code == status.HTTP_202_ACCEPTED:
            response["Location"] = response.data["status_url"]  # a replay stores no headers
        return response

    def submit(self, request, store):
        data = validated(BulkJobCreateSerializer, request.data)
        job = bulk_job_submit(store=store, actor=request.user, **data)
        status_url = reverse("bulk-job-detail", kwargs={"job_id": job.pk}, request=request)
        body = {"job": str(job.pk), "status_url": status_url}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class BulkJobDetailApi(ApiView):
    """A bulk job's status and progress, and its failed items (index, sku, detail,
    code); for its creator, its store's managers and staff (others: 404).

    A finished job's answer carries ``X-Consistency-Token`` where there are replicas:
    its changes were committed by a worker, not by any request of the client's, and a
    client that polls until ``done`` and then reads its lists must see them."""

    serializer_class = BulkJobSerializer

    @extend_schema(responses={200: BulkJobSerializer, **errors(404)})
    def get(self, request, job_id):
        job = bulk_job_for(request.user, job_id)
        if job is None:
            raise NotFound("No such job.")
        if job.status in (BulkJobStatus.DONE, BulkJobStatus.FAILED):
            answer_with_token()
        return Response(BulkJobSerializer(job).data)


class MovementListApi(ApiView):
    """The store's ledger, newest first, by cursor (``CursorPagination``: no count)."""

    serializer_class = MovementSerializer
    filterset_class = MovementFilter
    pagination_class = CursorPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Movement.objects.none()
        return movements_of_store(store_for(self.request.user, self.kwargs["code"]))

    @extend_schema(responses={200: MovementSerializer(many=True), **errors(400, 404)})
    def get(self, request, code):
        return self.paginated_response(self.get_queryset(), MovementSerializer)


def reservation_or_404(store, reservation_id) -> Reservation:
    reservation = reservations_of_store(store).filter(pk=reservation_id).first()
    if reservation is None:
        raise NotFound("No such reservation in this store.")
    return reservation


class ReservationListApi(ApiView):
    serializer_class = ReservationSerializer
    filterset_class = ReservationFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Reservation.objects.none()
        return reservations_of_store(store_for(self.request.user, self.kwargs["code"]))

    @extend_schema(responses={200: ReservationSerializer(many=True), **errors(400, 404)})
    def get(self, request, code):
        return self.paginated_response(self.get_queryset(), ReservationSerializer)

    @extend_schema(
        request=ReservationCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: ReservationSerializer, **errors(400, 403, 404, 409, 422)},
    )
    def post(self, request, code):
        store = store_for(request.user, code, role=Role.CLERK)
        return idempotently(self, request, lambda: self.reserve(request, store))

    def reserve(self, request, store):
        data = validated(ReservationCreateSerializer, request.data)
        reservation = reservation_create(
            store=store,
            lines=[StockLine(line["product"], line["quantity"]) for line in data["lines"]],
            ttl_seconds=data.get("ttl_seconds"),
            reference=data["reference"],
            actor=request.user,
        )
        body = ReservationSerializer(reservation_or_404(store, reservation.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)


class ReservationDetailApi(ApiView):
    serializer_class = ReservationSerializer

    @extend_schema(responses={200: ReservationSerializer, **errors(404)})
    def get(self, request, code, reservation_id):
        store = store_for(request.user, code)
        return Response(ReservationSerializer(reservation_or_404(store, reservation_id)).data)


class ReservationActionApi(ApiView):
    """POST commit/ or release/ of one reservation; answers 200 with the reservation."""

    serializer_class = ReservationSerializer
    service = None

    def post(self, request, code, reservation_id):
        store = store_for(request.user, code, role=Role.CLERK)

        def execute():
            reservation = reservation_or_404(store, reservation_id)
            self.service(reservation=reservation, actor=request.user)
            return Response(ReservationSerializer(reservation_or_404(store, reservation_id)).data)

        return idempotently(self, request, execute)


RESERVATION_ACTION_SCHEMA = extend_schema_view(
    post=extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: ReservationSerializer,
            **errors(400, 403, 404, 422),
            409: OpenApiResponse(
                ReservationNotActiveSerializer,
                "The reservation is not active, or (commit) its store or a product is deactivated.",
            ),
        },
    )
)


@RESERVATION_ACTION_SCHEMA
class ReservationCommitApi(ReservationActionApi):
    service = staticmethod(reservation_commit)


@RESERVATION_ACTION_SCHEMA
class ReservationReleaseApi(ReservationActionApi):
    service = staticmethod(reservation_release)
