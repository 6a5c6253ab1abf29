"""A URL configuration of probe views that exercise the shared API plumbing in isolation.

The real routes are tested in each app; these prove the envelope, errors, pagination and scope
checks themselves, whatever routes exist.
"""

from django.urls import include, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from sbt_site.api.pagination import paginate
from sbt_site.errors import Conflict, NotFound
from tenants.models import Tenant


class ProbeInput(serializers.Serializer):
    name = serializers.CharField(max_length=20)
    count = serializers.IntegerField(min_value=0)


class ProbeListView(APIView):
    operations = {"GET": "fetchAllTenants", "POST": "createTenant"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        page = paginate(Tenant.objects.all(), request)
        return page.response([{"tenantId": str(tenant.pk), "tenantName": tenant.name} for tenant in page.items])

    @extend_schema(request=ProbeInput, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        serializer = ProbeInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response({"data": serializer.validated_data}, status=201)


class ProbeDetailView(APIView):
    operations = {"GET": "fetchTenant", "DELETE": "deleteTenant"}

    @extend_schema(responses=OpenApiTypes.OBJECT, operation_id="probe_get")
    def get(self, request, tenant_id):
        raise NotFound(f"Tenant not found for id {tenant_id}")

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def delete(self, request, tenant_id):
        raise Conflict("Tenant is already offboarded", code="already_offboarded")


class UndeclaredView(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, exclude=True)
    def get(self, request):
        return Response({"data": "should never be served"})


urlpatterns = [
    path("api/v1/probe", ProbeListView.as_view()),
    path("api/v1/probe/<uuid:tenant_id>", ProbeDetailView.as_view()),
    path("api/v1/undeclared", UndeclaredView.as_view()),
    path("", include("sbt_site.urls")),
]

from sbt_site.urls import handler400, handler404, handler500  # noqa: E402, F401 - the root URLconf's handlers
