from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.response import Response

from inventory_site.api.ratelimits import enforce_rate_limit
from inventory_site.api.schema import errors
from inventory_site.api.views import ApiView, validated

from .services import token_for_user

TokenResponse = inline_serializer("TokenResponse", {"token": serializers.CharField()})


class ObtainTokenApi(ApiView):
    """Exchange a username and password for the user's API token."""

    authentication_classes = ()
    permission_classes = ()
    serializer_class = AuthTokenSerializer

    def check_permissions(self, request):
        # Every attempt counts, successful or not: this is what slows password guessing.
        enforce_rate_limit(
            request, group="auth-token", key="ip", rate=settings.API_RATE_TOKEN_PER_IP
        )
        super().check_permissions(request)

    @extend_schema(request=AuthTokenSerializer, responses={200: TokenResponse, **errors(400)})
    def post(self, request):
        data = validated(AuthTokenSerializer, request.data, context={"request": request})
        token = token_for_user(user=data["user"], actor=data["user"])
        return Response({"token": token.key})
