"""The billing provider's webhook endpoint."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import services
from sbt_site.conf import sbt_settings
from sbt_site.errors import NotFound


class BillingWebhookView(APIView):
    """``POST /billing/<webhook path>``: the provider's signature is the only credential."""

    permission_classes = [AllowAny]
    authentication_classes = []
    parser_classes = []  # the signature covers the raw bytes: nothing may parse them first

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses=OpenApiTypes.OBJECT,
        summary="Billing provider webhook (Stripe-Signature verified)",
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
