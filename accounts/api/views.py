"""The IAuth routes: /users (CONTRACT.md "Users") and the public /auth-info."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.api.serializers import UserCreateInput, UserOutput, UserUpdateInput, user_data
from sbt_site.api.pagination import parse_limit
from sbt_site.api.permissions import client_tenant_id
from sbt_site.conf import sbt_settings

MESSAGE = inline_serializer("UserMessage", {"message": serializers.CharField()})


def granter_scopes(request) -> list[str] | None:
    """The scopes of a user's own token, which bound the roles it may hand out; None for a
    machine client (the operator chose its scopes)."""
    token = request.auth
    return token.scope.split() if token is not None and token.user_id is not None else None


class UserListView(APIView):
    operations = {"GET": "fetchAllUsers", "POST": "createUser"}

    @extend_schema(
        parameters=[
            OpenApiParameter("limit", int, description="1 to 60 (default 10)"),
            OpenApiParameter("next_token", str, description="from the previous page"),
        ],
        responses=inline_serializer(
            "UserList", {"data": UserOutput(many=True), "next_token": serializers.CharField(required=False)}
        ),
        operation_id="users_list",
    )
    def get(self, request):
        limit = parse_limit(request, max_limit=sbt_settings.USERS_PAGE_SIZE_MAX)
        page = selectors.user_list(
            limit=limit,
            next_token=request.query_params.get("next_token") or None,
            client_tenant_id=client_tenant_id(request),
        )
        body = {"data": [user_data(user) for user in page.users]}
        if page.next_token:
            body["next_token"] = page.next_token
        return Response(body)

    @extend_schema(
        request=UserCreateInput,
        responses={201: inline_serializer("UserCreated", {"data": {"userName": serializers.CharField()}})},
    )
    def post(self, request):
        serializer = UserCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = services.user_create(
            user_name=data["userName"],
            email=data["email"],
            user_role=data["userRole"],
            tenant_id=data.get("tenantId"),
            client_tenant_id=client_tenant_id(request),
            granter_scopes=granter_scopes(request),
        )
        return Response({"data": {"userName": user.user_name}}, status=201)


class UserDetailView(APIView):
    operations = {"GET": "fetchUser", "PUT": "updateUser", "DELETE": "deleteUser"}

    @extend_schema(responses=inline_serializer("UserDetail", {"data": UserOutput()}))
    def get(self, request, user_name):
        user = selectors.user_get(user_name=user_name, client_tenant_id=client_tenant_id(request))
        return Response({"data": user_data(user)})

    @extend_schema(request=UserUpdateInput, responses=MESSAGE)
    def put(self, request, user_name):
        serializer = UserUpdateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_update(
            user_name=user_name,
            email=serializer.validated_data.get("email"),
            user_role=serializer.validated_data.get("userRole"),
            client_tenant_id=client_tenant_id(request),
            granter_scopes=granter_scopes(request),
        )
        return Response({"message": "User updated"})

    @extend_schema(responses=MESSAGE)
    def delete(self, request, user_name):
        services.user_delete(
            user_name=user_name, client_tenant_id=client_tenant_id(request), granter_scopes=granter_scopes(request)
        )
        return Response({"message": "User deleted"})


class UserEnableView(APIView):
    operations = {"PUT": "enableUser"}

    @extend_schema(request=None, responses=MESSAGE)
    def put(self, request, user_name):
        services.user_enable(
            user_name=user_name, client_tenant_id=client_tenant_id(request), granter_scopes=granter_scopes(request)
        )
        return Response({"message": "User enabled"})


class UserDisableView(APIView):
    """SBT disables with DELETE; PUT is accepted too, as for enable."""

    operations = {"DELETE": "disableUser", "PUT": "disableUser"}

    @extend_schema(request=None, responses=MESSAGE, operation_id="users_disable_delete")
    def delete(self, request, user_name):
        services.user_disable(
            user_name=user_name, client_tenant_id=client_tenant_id(request), granter_scopes=granter_scopes(request)
        )
        return Response({"message": "User disabled"})

    @extend_schema(request=None, responses=MESSAGE, operation_id="users_disable_update")
    def put(self, request, user_name):
        return self.delete(request, user_name)


class AuthInfoView(APIView):
    """The public IAuth configuration: how an application plane finds the issuer, JWKS and clients."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response({"data": selectors.auth_info()})
