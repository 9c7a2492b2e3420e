from rest_framework.generics import GenericAPIView

from inventory_site.lookup_cache import lookups
from inventory_site.replicas.routing import replica_reads

from .gate import enforce_user_limit, open_gate


class ApiView(GenericAPIView):
    """Base of every API endpoint.

    Before authentication, one Redis round trip counts the client address (so that
    floods of bad tokens and anonymous requests are limited too) and, when the token is
    known to this process, its user, and reads the lookup cache's generations; see
    ``inventory_site.api.gate``. The per-user limit is enforced once the user is known.
    """

    def dispatch(self, request, *args, **kwargs):
        with lookups.request_scope():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        open_gate(request, self.cached_entry_wanted)
        super().initial(request, *args, **kwargs)

    def cached_entry_wanted(self, user_id):
        """The cache entry this request will read, if this process can name it before
        authentication from what it holds for ``user_id`` (the token's owner): the gate's
        round trip then reads it too. None: nothing to read ahead."""
        return None

    def check_permissions(self, request):
        enforce_user_limit(request)
        super().check_permissions(request)

    # Whether a list's page may be read from a replica (``inventory_site.replicas``). A
    # view whose page fills a shared cache says no: a replica's older rows would be
    # cached past the change that retired them.
    list_from_replica = True

    def paginated_response(self, queryset, serializer_class):
        """One page of ``queryset``, filtered by the view's filterset, as serialized JSON.

        The filters run first, on the primary (they look up stores and products through
        the lookup cache, which only the primary fills); the page is then counted, read
        and serialized where the replica rule allows."""
        queryset = self.filter_queryset(queryset)
        if self.list_from_replica:
            return self._page_from_replica(queryset, serializer_class)
        return self._page_response(queryset, serializer_class)

    def _page_response(self, queryset, serializer_class):
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializer_class(page, many=True).data)

    _page_from_replica = replica_reads(_page_response)


def validated(serializer_class, data, **kwargs) -> dict:
    """Validate request data with ``serializer_class``; 400 with every error otherwise."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
