"""Reservations (checkout holds): created, read, committed and released."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from inventory_site.api.schema import ReservationNotActiveSerializer, errors
from inventory_site.api.views import ApiView, validated
from stores.access import store_for
from stores.models import Role

from ..filters import ReservationFilter
from ..idempotency import idempotently
from ..models import Reservation
from ..selectors import reservations_of_store
from ..serializers import ReservationCreateSerializer, ReservationSerializer
from ..services import StockLine, reservation_commit, reservation_create, reservation_release
from .schema import IDEMPOTENCY_KEY


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
