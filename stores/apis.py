from django.contrib.auth import get_user_model
from django.db import IntegrityError
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from inventory_site.api.schema import errors
from inventory_site.api.views import ApiView, validated

from .access import (
    require_member_permission,
    require_permission,
    store_for_administration,
    store_for_members,
    stores_listed_for,
)
from .models import Membership
from .selectors import store_members
from .serializers import (
    MembershipGrantSerializer,
    MembershipSerializer,
    StoreSerializer,
    StoreUpdateSerializer,
)
from .services import membership_grant, membership_revoke, store_create, store_update


class StoreListApi(ApiView):
    serializer_class = StoreSerializer

    def get_queryset(self):
        return stores_listed_for(self.request.user).order_by("code")

    @extend_schema(responses={200: StoreSerializer(many=True), **errors(400, 404)})
    def get(self, request):
        return self.paginated_response(self.get_queryset(), StoreSerializer)

    @extend_schema(request=StoreSerializer, responses={201: StoreSerializer, **errors(400, 403)})
    def post(self, request):
        require_permission(request.user, "stores.add_store", to="create stores")
        data = validated(StoreSerializer, request.data)
        try:
            store = store_create(code=data["code"], name=data["name"], actor=request.user)
        except IntegrityError:  # created by a concurrent request since validation
            raise ValidationError({"code": ["A store with this code already exists."]}) from None
        return Response(StoreSerializer(store).data, status=status.HTTP_201_CREATED)


class StoreDetailApi(ApiView):
    serializer_class = StoreSerializer

    @extend_schema(responses={200: StoreSerializer, **errors(404)})
    def get(self, request, code):
        store = stores_listed_for(request.user).filter(code=code).first()
        if store is None:
            raise NotFound("No such store.")
        return Response(StoreSerializer(store).data)

    @extend_schema(
        request=StoreUpdateSerializer, responses={200: StoreSerializer, **errors(400, 403, 404)}
    )
    def patch(self, request, code):
        store = store_for_administration(request.user, code, "stores.change_store")
        require_permission(request.user, "stores.change_store", to="change stores")
        changes = validated(StoreUpdateSerializer, request.data, partial=True)
        store = store_update(store=store, actor=request.user, **changes)
        return Response(StoreSerializer(store).data)


class MemberListApi(ApiView):
    serializer_class = MembershipSerializer
    queryset = Membership.objects.none()  # for the schema; requests use store_members()

    @extend_schema(responses={200: MembershipSerializer(many=True), **errors(400, 403, 404)})
    def get(self, request, code):
        store = store_for_members(request.user, code, "stores.view_membership")
        return self.paginated_response(store_members(store), MembershipSerializer)

    @extend_schema(
        request=MembershipGrantSerializer,
        responses={
            200: MembershipSerializer,
            201: MembershipSerializer,
            **errors(400, 403, 404),
        },
        description="Grant a role; 201 for a new member, 200 when an existing role changes.",
    )
    def post(self, request, code):
        store = store_for_members(
            request.user, code, "stores.add_membership", "stores.change_membership"
        )
        data = validated(MembershipGrantSerializer, request.data)
        changing = store.memberships.filter(user=data["username"]).exists()
        require_member_permission(
            request.user,
            store,
            "stores.change_membership" if changing else "stores.add_membership",
        )
        membership, created = membership_grant(
            store=store, user=data["username"], role=data["role"], actor=request.user
        )
        return Response(
            MembershipSerializer(membership).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class MemberDetailApi(ApiView):
    serializer_class = MembershipSerializer

    @extend_schema(responses={204: None, **errors(403, 404)})
    def delete(self, request, code, username):
        store = store_for_members(request.user, code, "stores.delete_membership")
        user = get_user_model().objects.filter(username=username).first()
        if user is None or not membership_revoke(store=store, user=user, actor=request.user):
            raise NotFound("This user is not a member of the store.")
        return Response(status=status.HTTP_204_NO_CONTENT)
