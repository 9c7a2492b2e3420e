"""Stock levels: the list, one level (read, reorder point), and the four operations on
one level (receive, adjust, set, purchase)."""

import re

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from catalog.apis import product_or_404
from catalog.selectors import known_product_id
from inventory_site.api.schema import errors
from inventory_site.api.views import ApiView, validated
from stores.access import known_store_id, store_for
from stores.models import Role

from ..cache import stock_level_cache
from ..filters import StockLevelFilter
from ..idempotency import idempotently
from ..models import StockLevel
from ..selectors import stock_level_or_zero, stock_levels_of_store
from ..serializers import (
    AdjustSerializer,
    PurchaseSerializer,
    ReceiveSerializer,
    ReorderPointSerializer,
    SetCountSerializer,
    StockLevelReadSerializer,
    StockLevelSerializer,
    StockOperationResultSerializer,
    stock_level_body,
)
from ..services import (
    stock_adjust,
    stock_purchase,
    stock_receive,
    stock_set_count,
    stock_set_reorder_point,
)
from .schema import IDEMPOTENCY_KEY

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
