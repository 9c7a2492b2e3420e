"""The stock event log under /api/v1/stores/<code>/ (``events.urls``)."""

from drf_spectacular.utils import extend_schema

from inventory_site.api.pagination import AfterPagination
from inventory_site.api.schema import errors
from inventory_site.api.views import ApiView
from stores.access import store_for
from stores.models import Role

from .models import StockEvent
from .selectors import events_of_store
from .serializers import StockEventSerializer


class StockEventListApi(ApiView):
    """The store's stock events in `seq` order, from the one after `?after=` (default 0):
    `next` carries on from the page's last event, and is null once the page holds the
    last there is so far (keep that `seq`, ask again later for what follows)."""

    # A replica may serve the page (``ApiView.list_from_replica``): it replays the
    # primary's commits in their order and a store's events are numbered in commit
    # order, so a lagging replica shows fewer events, never one without those before it;
    # the client's next request starts from the last it read and misses nothing. With
    # X-Consistency-Token a client sees at least the events of its own writes.
    serializer_class = StockEventSerializer
    pagination_class = AfterPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return StockEvent.objects.none()
        return events_of_store(store_for(self.request.user, self.kwargs["code"], role=Role.VIEWER))

    @extend_schema(responses={200: StockEventSerializer(many=True), **errors(400, 404)})
    def get(self, request, code):
        return self.paginated_response(self.get_queryset(), StockEventSerializer)
