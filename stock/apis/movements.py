"""The ledger of a store."""

from drf_spectacular.utils import extend_schema

from inventory_site.api.pagination import CursorPagination
from inventory_site.api.schema import errors
from inventory_site.api.views import ApiView
from stores.access import store_for

from ..filters import MovementFilter
from ..models import Movement
from ..selectors import movements_of_store
from ..serializers import MovementSerializer


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
