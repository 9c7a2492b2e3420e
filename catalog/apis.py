import json
import math

from django.db import IntegrityError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from inventory_site.api.schema import errors
from inventory_site.api.views import ApiView, validated
from inventory_site.replicas.routing import replica_reads
from stock.selectors import stock_levels_of_product_visible_to, total_available
from stores.access import require_permission

from .cache import cached_response_body
from .filters import ProductFilter
from .selectors import product_by_sku, product_list
from .serializers import (
    ProductAvailabilitySerializer,
    ProductSerializer,
    ProductUpdateSerializer,
)
from .services import product_create, product_update


def product_or_404(sku: str):
    product = product_by_sku(sku)
    if product is None:
        raise NotFound("No such product.")
    return product


class ProductListApi(ApiView):
    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    list_from_replica = False  # its pages fill the catalog cache

    def get_queryset(self):
        return product_list()

    @extend_schema(responses={200: ProductSerializer(many=True), **errors(400, 404)})
    def get(self, request):
        """A page of the catalog, cached under the parameters that choose it (the filters,
        the page and the page size as served), never under the raw URL: parameters that
        change nothing (``?x=<random>``, ``?page=01``, a page size above the cap) would
        each fill an entry. The links to the next and previous page are this request's
        own, so they are built per request around the cached page."""
        filters = ProductFilter(request.query_params, queryset=self.get_queryset())
        if not filters.is_valid():  # the filtering answers 400, naming the parameter
            return self.paginated_response(self.get_queryset(), ProductSerializer)
        page_size = self.paginator.get_page_size(request)
        chosen = {
            **filters.form.cleaned_data,
            "page": _page_number(request.query_params.get(self.paginator.page_query_param)),
            "page_size": page_size,
        }
        page = cached_response_body(
            f"list:{json.dumps(chosen, sort_keys=True, default=str)}",
            self._page,
        )
        return Response(_with_page_links(page, request, page_size))

    def _page(self) -> dict:
        """The part of a list answer that depends on the parameters only."""
        body = self.paginated_response(self.get_queryset(), ProductSerializer).data
        return {
            "count": body["count"],
            "page": self.paginator.page.number,
            "results": body["results"],
        }

    @extend_schema(
        request=ProductSerializer, responses={201: ProductSerializer, **errors(400, 403)}
    )
    def post(self, request):
        require_permission(request.user, "catalog.add_product", to="add products")
        data = validated(ProductSerializer, request.data)
        try:
            product = product_create(actor=request.user, **data)
        except IntegrityError:  # created by a concurrent request since validation
            raise ValidationError({"sku": ["A product with this SKU already exists."]}) from None
        return Response(ProductSerializer(product).data, status=status.HTTP_201_CREATED)


class ProductDetailApi(ApiView):
    serializer_class = ProductSerializer

    @extend_schema(responses={200: ProductSerializer, **errors(404)})
    def get(self, request, sku):
        return Response(
            cached_response_body(
                f"detail:{sku}", lambda: ProductSerializer(product_or_404(sku)).data
            )
        )

    @extend_schema(
        request=ProductUpdateSerializer,
        responses={200: ProductSerializer, **errors(400, 403, 404)},
    )
    def patch(self, request, sku):
        product = product_or_404(sku)
        require_permission(request.user, "catalog.change_product", to="change products")
        changes = validated(ProductUpdateSerializer, request.data, partial=True)
        product = product_update(product=product, actor=request.user, **changes)
        return Response(ProductSerializer(product).data)


class ProductAvailabilityApi(ApiView):
    serializer_class = ProductAvailabilitySerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("page", int, description="A page number within the stores."),
            OpenApiParameter(
                "page_size", int, description="Stores per page: 50 unless set, at most 200."
            ),
        ],
        responses={200: ProductAvailabilitySerializer, **errors(404)},
    )
    def get(self, request, sku):
        """The total available over every store the user can see, and those stores a
        page at a time (``count``, ``next``, ``previous`` as in every list): a product
        stocked in thousands of stores is not one unbounded answer."""
        product = product_or_404(sku)
        # The user's stores are read here, on the primary; the levels where a replica may.
        levels = stock_levels_of_product_visible_to(product, request.user)
        return Response(self._availability(product, levels))

    @replica_reads
    def _availability(self, product, levels) -> dict:
        stores = self.paginate_queryset(levels)
        body = {
            "sku": product.sku,
            "total_available": total_available(levels),
            "count": self.paginator.page.paginator.count,
            "next": self.paginator.get_next_link(),
            "previous": self.paginator.get_previous_link(),
            "stores": stores,
        }
        return ProductAvailabilitySerializer(body).data


def _page_number(asked: str | None):
    """The page ``asked`` for, as the paginator reads it (``01`` and ``1`` are one page);
    text it cannot read is kept as it is, and answered 404 without being cached."""
    if asked is None:
        return 1
    try:
        return int(asked)
    except ValueError:
        return asked


def _with_page_links(page: dict, request, page_size: int) -> dict:
    """A cached page with this request's links to the pages before and after it, as
    DRF's PageNumberPagination writes them."""
    url, number = request.build_absolute_uri(), page["page"]
    last = max(math.ceil(page["count"] / page_size), 1)
    if number == 2:
        previous = remove_query_param(url, "page")
    else:
        previous = replace_query_param(url, "page", number - 1) if number > 1 else None
    return {
        "count": page["count"],
        "next": replace_query_param(url, "page", number + 1) if number < last else None,
        "previous": previous,
        "results": page["results"],
    }
