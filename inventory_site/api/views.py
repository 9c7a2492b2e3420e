from rest_framework.generics import GenericAPIView

from .ratelimits import enforce_ip_rate_limit, enforce_user_rate_limit


class ApiView(GenericAPIView):
    """Base of every API endpoint.

    The per-IP limit is counted before authentication, so that floods of bad tokens and
    anonymous requests are limited too; the per-user limit once the user is known.
    """

    def initial(self, request, *args, **kwargs):
        enforce_ip_rate_limit(request)
        super().initial(request, *args, **kwargs)

    def check_permissions(self, request):
        enforce_user_rate_limit(request)
        super().check_permissions(request)

    def paginated_response(self, queryset, serializer_class):
        """One page of ``queryset``, filtered by the view's filterset, as serialized JSON."""
        page = self.paginate_queryset(self.filter_queryset(queryset))
        return self.get_paginated_response(serializer_class(page, many=True).data)


def validated(serializer_class, data, **kwargs) -> dict:
    """Validate request data with ``serializer_class``; 400 with every error otherwise."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
