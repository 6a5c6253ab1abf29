"""Tenant registrations, tenants and tenant config (CONTRACT.md). Thin: services do the work."""

from urllib.parse import urlsplit

from django.http import JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from sbt_site.api.pagination import paginate
from sbt_site.api.permissions import client_tenant_id
from sbt_site.errors import ServiceError
from tenants import selectors, services
from tenants.api.serializers import (
    TenantRegistrationCreateInput,
    TenantRegistrationUpdateInput,
    validated,
    validated_object,
)
from tenants.wire import registration_to_wire, tenant_row_to_wire, tenant_to_wire

REGISTRATION_EXAMPLE = OpenApiExample(
    "registration",
    value={
        "data": {
            "tenantRegistrationId": "6f1c…",
            "tenantId": "2b7e…",
            "sbtaws_active": True,
            "registrationStatus": "In progress",
            "registrationStatusReason": None,
            "created": "2026-11-25T19:45:00.123456+00:00",
            "modified": "2026-11-25T19:45:00.123456+00:00",
        }
    },
    response_only=True,
)


class TenantRegistrationListView(APIView):
    operations = {"GET": "fetchAllTenantRegistrations", "POST": "createTenantRegistration"}

    @extend_schema(operation_id="tenant_registrations_list", responses=OpenApiTypes.OBJECT)
    def get(self, request):
        registrations = selectors.tenant_registration_list(client_tenant_id=client_tenant_id(request))
        page = paginate(registrations, request, ordering=("created", "pk"))
        return page.response([registration_to_wire(registration) for registration in page.items])

    @extend_schema(
        operation_id="tenant_registrations_create",
        request=TenantRegistrationCreateInput,
        responses={201: OpenApiTypes.OBJECT},
        examples=[
            OpenApiExample(
                "onboard",
                value={
                    "tenantData": {"tenantName": "acme", "email": "ops@acme.test", "tier": "basic"},
                    "tenantRegistrationData": {"registrationSource": "signup"},
                },
                request_only=True,
            )
        ],
    )
    def post(self, request):
        body = validated(TenantRegistrationCreateInput, request.data)
        registration = services.tenant_registration_create(
            tenant_data=body.get("tenantData"), registration_data=body.get("tenantRegistrationData")
        )
        return Response(
            {
                "data": {
                    "tenantRegistrationId": str(registration.pk),
                    "tenantId": str(registration.tenant_id),
                    "message": "Tenant registration initiated",
                }
            },
            status=201,
        )


class TenantRegistrationDetailView(APIView):
    operations = {
        "GET": "fetchTenantRegistration",
        "PATCH": "updateTenantRegistration",
        "DELETE": "deleteTenantRegistration",
    }

    @extend_schema(
        operation_id="tenant_registrations_retrieve", responses=OpenApiTypes.OBJECT, examples=[REGISTRATION_EXAMPLE]
    )
    def get(self, request, registration_id):
        registration = selectors.tenant_registration_get(
            registration_id=registration_id, client_tenant_id=client_tenant_id(request)
        )
        return Response({"data": registration_to_wire(registration)})

    @extend_schema(
        operation_id="tenant_registrations_update",
        request=TenantRegistrationUpdateInput,
        responses=OpenApiTypes.OBJECT,
    )
    def patch(self, request, registration_id):
        body = validated(TenantRegistrationUpdateInput, request.data)
        registration, tenant = services.tenant_registration_update(
            registration_id=registration_id,
            registration_data=body.get("tenantRegistrationData"),
            tenant_data=body.get("tenantData"),
            tenant_status=body.get("tenantStatus"),
        )
        return Response(
            {
                "data": {
                    "tenantRegistration": registration_to_wire(registration),
                    "tenant": tenant_to_wire(tenant) if tenant is not None else None,
                    "message": "Tenant registration updated successfully",
                }
            }
        )

    @extend_schema(operation_id="tenant_registrations_destroy", responses=OpenApiTypes.OBJECT)
    def delete(self, request, registration_id):
        services.tenant_registration_delete(registration_id=registration_id, repeat_ok=True)
        return Response({"data": {"message": "Tenant registration deletion initiated"}})


class TenantRegistrationActivateView(APIView):
    operations = {"PUT": "activateTenantRegistration"}

    @extend_schema(operation_id="tenant_registrations_activate", request=None, responses=OpenApiTypes.OBJECT)
    def put(self, request, registration_id):
        registration = services.tenant_registration_activate(registration_id=registration_id)
        return Response({"data": {**registration_to_wire(registration), "message": "Tenant activation initiated"}})


class TenantRegistrationDeactivateView(APIView):
    operations = {"PUT": "deactivateTenantRegistration"}

    @extend_schema(operation_id="tenant_registrations_deactivate", request=None, responses=OpenApiTypes.OBJECT)
    def put(self, request, registration_id):
        registration = services.tenant_registration_deactivate(registration_id=registration_id)
        return Response({"data": {**registration_to_wire(registration), "message": "Tenant deactivation initiated"}})


class TenantListView(APIView):
    operations = {"GET": "fetchAllTenants", "POST": "createTenant"}

    @extend_schema(operation_id="tenants_list", responses=OpenApiTypes.OBJECT)
    def get(self, request):
        page = paginate(selectors.tenant_row_list(client_tenant_id=client_tenant_id(request)), request)
        return page.response([tenant_row_to_wire(row) for row in page.items])

    @extend_schema(operation_id="tenants_create", request=OpenApiTypes.OBJECT, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        tenant = services.tenant_create(tenant_data=validated_object(request.data))
        return Response({"data": tenant_to_wire(tenant)}, status=201)


class TenantDetailView(APIView):
    operations = {"GET": "fetchTenant", "PUT": "updateTenant", "DELETE": "deleteTenant"}

    @extend_schema(operation_id="tenants_retrieve", responses=OpenApiTypes.OBJECT)
    def get(self, request, tenant_id):
        tenant = selectors.tenant_get(tenant_id=tenant_id, client_tenant_id=client_tenant_id(request))
        return Response({"data": tenant_to_wire(tenant)})

    @extend_schema(operation_id="tenants_update", request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def put(self, request, tenant_id):
        tenant = services.tenant_update(tenant_id=tenant_id, tenant_data=validated_object(request.data))
        return Response({"data": tenant_to_wire(tenant)})

    @extend_schema(operation_id="tenants_destroy", responses=OpenApiTypes.OBJECT)
    def delete(self, request, tenant_id):
        tenant = services.tenant_delete(tenant_id=tenant_id)
        return Response({"data": tenant_to_wire(tenant)})


def _name_from_origin(origin: str) -> str | None:
    """The first DNS label of the Origin's host: ``https://acme.app.example.com`` → ``acme``."""
    try:
        host = urlsplit(origin).hostname
    except ValueError:
        return None
    return host.split(".")[0] if host else None


class TenantConfigView(APIView):
    """Public: an application plane's front end finds its tenant's config before anyone logs in."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="tenant_config_retrieve",
        parameters=[
            OpenApiParameter("tenantId", str, description="the tenant's id"),
            OpenApiParameter("tenantName", str, description="the tenant's name (else the Origin header's first label)"),
        ],
        responses=OpenApiTypes.ANY,
    )
    def get(self, request, tenant_name: str | None = None):
        tenant_id = request.query_params.get("tenantId")
        if tenant_name is None and not tenant_id:
            tenant_name = request.query_params.get("tenantName") or _name_from_origin(request.headers.get("Origin", ""))
        if not tenant_id and not tenant_name:
            raise ServiceError("Origin header missing!", code="origin_missing")
        config = selectors.tenant_config_get(tenant_id=tenant_id, tenant_name=tenant_name)
        # The config itself is the body, without the envelope; JsonResponse also renders a null.
        return JsonResponse(config, safe=False)


class TenantConfigByNameView(TenantConfigView):
    @extend_schema(operation_id="tenant_config_by_name_retrieve", responses=OpenApiTypes.ANY)
    def get(self, request, tenant_name: str | None = None):
        return super().get(request, tenant_name=tenant_name)
