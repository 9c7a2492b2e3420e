"""Transfers between stores."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from inventory_site.api.schema import errors
from inventory_site.api.views import ApiView, validated
from stores.access import store_for
from stores.models import Role, Store

from ..idempotency import idempotently
from ..serializers import TransferResultSerializer, TransferSerializer
from ..services import StockLine, stock_transfer
from .schema import IDEMPOTENCY_KEY


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
