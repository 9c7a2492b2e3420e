from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.response import Response

from inventory_site.api.ratelimits import enforce_login_username_rate_limit, enforce_rate_limit
from inventory_site.api.schema import errors
from inventory_site.api.views import ApiView, validated

from .services import token_for_user

TokenResponse = inline_serializer("TokenResponse", {"token": serializers.CharField()})


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(
        max_length=4096, trim_whitespace=False, write_only=True, style={"input_type": "password"}
    )


class ObtainTokenApi(ApiView):
    """Exchange a username and password for the user's API token. Wrong credentials
    answer 401; every attempt counts against the login rate limits first."""

    authentication_classes = ()
    permission_classes = ()
    serializer_class = TokenRequestSerializer

    def check_permissions(self, request):
        # Every attempt counts, successful or not: this is what slows password guessing.
        enforce_rate_limit(
            request, group="auth-token", key="ip", rate=settings.API_RATE_TOKEN_PER_IP
        )
        super().check_permissions(request)

    def get_authenticate_header(self, request):
        # With no authentication classes DRF would turn a 401 into 403; wrong credentials
        # are a 401, and the token scheme is what to authenticate with afterwards.
        return "Token"

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenResponse, **errors(400)})
    def post(self, request):
        credentials = validated(TokenRequestSerializer, request.data)
        enforce_login_username_rate_limit(request, username=credentials["username"])
        user = authenticate(request=request, **credentials)
        if user is None:
            raise AuthenticationFailed("Unable to log in with provided credentials.")
        token = token_for_user(user=user, actor=user)
        return Response({"token": token.key})
