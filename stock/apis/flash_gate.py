"""A level's flash-sale gate (``stock.flash_gate``): read and switched by its store's
managers.

The gate keeps its tokens in Redis. Without Redis (the embedded mode) a PUT still
records the switch, which takes effect once the site runs with Redis, and the GET shows
``tokens``, ``admitted`` and ``refunded`` as null.
"""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from catalog.apis import product_or_404
from inventory_site.api.schema import errors
from inventory_site.api.views import ApiView, validated
from stores.access import store_for
from stores.models import Role

from ..flash_gate.services import gate_state, gate_switch
from ..serializers import FlashSaleGateSerializer, FlashSaleGateSwitchSerializer


class FlashSaleGateApi(ApiView):
    serializer_class = FlashSaleGateSerializer

    def get_serializer_class(self):
        # The browsable API builds its PUT form from this: offer what PUT takes.
        if self.request is not None and self.request.method == "PUT":
            return FlashSaleGateSwitchSerializer
        return FlashSaleGateSerializer

    def get_object(self):
        """The store and product the URL names, for their store's managers only (404 or
        403 otherwise). OPTIONS asks for it too before it describes the PUT body."""
        store = store_for(self.request.user, self.kwargs["code"], role=Role.MANAGER)
        return store, product_or_404(self.kwargs["sku"])

    @extend_schema(responses={200: FlashSaleGateSerializer, **errors(403, 404)})
    def get(self, request, code, sku):
        return self.state(*self.get_object())

    @extend_schema(
        request=FlashSaleGateSwitchSerializer,
        responses={200: FlashSaleGateSerializer, **errors(400, 403, 404)},
    )
    def put(self, request, code, sku):
        """Switch the gate on or off (again is no change); answers the gate after."""
        store, product = self.get_object()
        data = validated(FlashSaleGateSwitchSerializer, request.data)
        gate_switch(store=store, product=product, enabled=data["enabled"], actor=request.user)
        return self.state(store, product)

    def state(self, store, product) -> Response:
        return Response(FlashSaleGateSerializer(gate_state(store=store, product=product)).data)
