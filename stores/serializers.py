from django.contrib.auth import get_user_model
from rest_framework import serializers

from .models import Membership, Role, Store


class StoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Store
        fields = ["code", "name", "is_active", "created_at"]
        read_only_fields = ["is_active", "created_at"]


class StoreUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Store
        fields = ["name", "is_active"]
        extra_kwargs = {"name": {"required": False}, "is_active": {"required": False}}


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["username", "role", "created_at"]


class MembershipGrantSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)

    def validate_username(self, username):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise serializers.ValidationError("No active user has this username.")
        return user
