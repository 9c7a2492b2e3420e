from rest_framework.generics import GenericAPIView

from .ratelimits import enforce_api_rate_limits


class ApiView(GenericAPIView):
    """Base of every API endpoint.

    Rate limits are counted before permissions are checked, so that unauthenticated
    floods are limited too.
    """

    def check_permissions(self, request):
        enforce_api_rate_limits(request)
        super().check_permissions(request)


def validated(serializer_class, data, **kwargs) -> dict:
    """Validate request data with ``serializer_class``; 400 with every error otherwise."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
