from django.db import IntegrityError
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from inventory_site.api.schema import errors
from inventory_site.api.views import ApiView, validated
from stock.selectors import stock_levels_of_product_visible_to
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

    def get_queryset(self):
        return product_list()

    @extend_schema(responses={200: ProductSerializer(many=True), **errors(400, 404)})
    def get(self, request):
        body = cached_response_body(
            f"list:{request.build_absolute_uri()}",
            lambda: self.paginated_response(self.get_queryset(), ProductSerializer).data,
        )
        return Response(body)

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

    @extend_schema(responses={200: ProductAvailabilitySerializer, **errors(404)})
    def get(self, request, sku):
        product = product_or_404(sku)
        levels = list(stock_levels_of_product_visible_to(product, request.user))
        body = {
            "sku": product.sku,
            "total_available": sum(level.available for level in levels),
            "stores": levels,
        }
        return Response(ProductAvailabilitySerializer(body).data)
