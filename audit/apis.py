from drf_spectacular.utils import extend_schema

from inventory_site.api.pagination import CursorPagination
from inventory_site.api.schema import errors
from inventory_site.api.views import ApiView

from .filters import AuditEventFilter
from .models import AuditEvent
from .selectors import audit_events_visible_to
from .serializers import AuditEventSerializer


class AuditEventListApi(ApiView):
    """The audit log, newest first, as much of it as the user may see
    (``audit_events_visible_to``; README, "Who sees which events"). Read-only; by
    cursor (``CursorPagination``: no count)."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    pagination_class = CursorPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AuditEvent.objects.none()
        return audit_events_visible_to(self.request.user)

    @extend_schema(responses={200: AuditEventSerializer(many=True), **errors(400, 404)})
    def get(self, request):
        return self.paginated_response(self.get_queryset(), AuditEventSerializer)
