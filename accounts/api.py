"""API: who am I, my tokens, the people."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import api_view
from rest_framework.response import Response

from accounts.models import ApiToken, Role, User
from accounts.services import create_api_token, revoke_api_token
from core.api_errors import ParseBodyFirst
from core.pagination import cursor_by


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "role", "is_active"]
        read_only_fields = fields


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]


class NewApiTokenSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret; shown only this once.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


@extend_schema(responses=UserSerializer)
@api_view(["GET"])
def me(request):
    """Return the person the request authenticates as."""
    return Response(UserSerializer(request.user).data)


class TokenViewSet(
    ParseBodyFirst,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your own API tokens. The secret is in the create response only; it is stored hashed."""

    serializer_class = ApiTokenSerializer
    queryset = ApiToken.objects.all()  # narrowed to the requester's own in get_queryset
    read_role = write_role = Role.OBSERVER
    pagination_class = cursor_by("-created_at", "-id")

    def get_queryset(self):
        return ApiToken.objects.filter(user=self.request.user)

    @extend_schema(responses={201: NewApiTokenSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, secret = create_api_token(request.user, name=serializer.validated_data["name"])
        token.token = secret
        return Response(NewApiTokenSerializer(token).data, status=201)

    def perform_destroy(self, instance):
        revoke_api_token(instance)


class UserViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = UserSerializer
    queryset = User.objects.order_by("username")
    pagination_class = cursor_by("username")
