"""The billing provider's webhook endpoint, and read-only views of customers and usage pushes."""

from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.boundary import tenant_in_reach
from billing import selectors, services
from billing.api.serializers import customer_data, usage_push_data
from sbt_site.api.exceptions import RequestValidationError
from sbt_site.api.pagination import paginate
from sbt_site.api.permissions import client_tenant_id
from sbt_site.conf import sbt_settings
from sbt_site.errors import NotFound
from sbt_site.ids import parse_uuid


def _tenant_filter(request) -> UUID | None:
    """The ``tenantId`` query filter; a tenant-bound client is always limited to its tenant."""
    raw = request.query_params.get("tenantId")
    requested = None
    if raw:
        requested = parse_uuid(raw)
        if requested is None:
            raise RequestValidationError({"tenantId": ["tenantId must be a UUID"]}, location="query")
    return tenant_in_reach(
        bound=client_tenant_id(request), requested=requested, not_found=f"Billing customer not found for tenant {raw}"
    )


class BillingCustomerListView(APIView):
    operations = {"GET": "fetchBilling"}

    @extend_schema(
        parameters=[
            OpenApiParameter("tenantId", str),
            OpenApiParameter("limit", int),
            OpenApiParameter("next_token", str),
        ],
        responses=OpenApiTypes.OBJECT,
        summary="Billing customers (one per tenant)",
        operation_id="billing_customers_list",
    )
    def get(self, request):
        page = paginate(selectors.billing_customer_list(tenant_id=_tenant_filter(request)), request)
        return page.response([customer_data(customer) for customer in page.items])


class BillingCustomerDetailView(APIView):
    operations = {"GET": "fetchBilling"}

    @extend_schema(
        responses=OpenApiTypes.OBJECT, summary="A tenant's billing customer", operation_id="billing_customer_get"
    )
    def get(self, request, tenant_id: UUID):
        customer = selectors.billing_customer_get(tenant_id=tenant_id, visible_to=client_tenant_id(request))
        return Response({"data": customer_data(customer)})


class UsagePushListView(APIView):
    operations = {"GET": "fetchBilling"}

    @extend_schema(
        parameters=[
            OpenApiParameter("tenantId", str),
            OpenApiParameter("meterApiName", str),
            OpenApiParameter("limit", int),
            OpenApiParameter("next_token", str),
        ],
        responses=OpenApiTypes.OBJECT,
        summary="Usage sent to the billing provider, newest first",
        operation_id="billing_usage_pushes_list",
    )
    def get(self, request):
        pushes = selectors.usage_push_list(
            tenant_id=_tenant_filter(request), meter_api_name=request.query_params.get("meterApiName")
        )
        page = paginate(pushes, request, ordering=("-created", "-id"))
        return page.response([usage_push_data(push) for push in page.items])


class BillingWebhookView(APIView):
    """``POST /billing/<webhook path>``: the provider's signature is the only credential."""

    permission_classes = [AllowAny]
    authentication_classes = []
    parser_classes = []  # the signature covers the raw bytes: nothing may parse them first

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses=OpenApiTypes.OBJECT,
        summary="Billing provider webhook (Stripe-Signature verified)",
        operation_id="billing_webhook",
    )
    def post(self, request, webhook_path: str):
        if webhook_path.strip("/") != sbt_settings.BILLING_WEBHOOK_PATH.strip("/"):
            raise NotFound("Not found")
        event, created = services.webhook_event_receive(body=request.body, headers=request.headers)
        return Response(
            {
                "data": {
                    "received": True,
                    "eventId": event.provider_event_id,
                    "duplicate": not created,
                    "status": event.status,
                }
            }
        )
