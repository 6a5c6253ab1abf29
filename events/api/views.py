from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from events.api.serializers import EventEntriesInput, EventEntryInput
from events.services import events_receive
from sbt_site.api.exceptions import RequestValidationError
from sbt_site.api.permissions import caller
from sbt_site.errors import ServiceError


class EventListView(APIView):
    """The application plane publishes events to the control plane (EventBridge PutEvents)."""

    operations = {"POST": "putEvents"}

    @extend_schema(
        operation_id="putEvents",
        request=OpenApiTypes.OBJECT,
        responses={201: OpenApiTypes.OBJECT},
        examples=[
            OpenApiExample(
                "provisionSuccess",
                request_only=True,
                value={
                    "detail-type": "provisionSuccess",
                    "source": "sbt.application.plane",
                    "detail": {
                        "tenantRegistrationId": "0d6f5c0e-8f7b-4a51-9d8a-3e0c2f1b7a66",
                        "jobOutput": {"tenantData": {"tenantConfig": {"theme": "dark"}}},
                    },
                },
            ),
            OpenApiExample("created", response_only=True, status_codes=["201"], value={"data": {"eventIds": ["…"]}}),
        ],
    )
    def post(self, request):
        """Store one event or a batch (``{"entries": [...]}``) and apply them, all or nothing.

        Every entry is checked first; if any is invalid, nothing is stored and the 422 names each
        bad entry by index. An event type may need a scope besides this one: provisioning results
        (provisionSuccess, activateSuccess, ...) that of updateTenantRegistration, ingestUsage that
        of ingestUsage; a caller lacking one gets 403 and nothing is stored. provisionSuccess and
        friends update the registration before this answers.
        """
        body = request.data
        if not isinstance(body, dict):
            raise RequestValidationError({"non_field_errors": ["Expected a JSON object"]})
        batch = "entries" in body
        serializer = EventEntriesInput(data=body) if batch else EventEntryInput(data=body)
        serializer.is_valid(raise_exception=True)
        entries = serializer.validated_data["entries"] if batch else [serializer.validated_data]
        try:
            events = events_receive(entries=entries, caller=caller(request))
        except ServiceError as exc:
            # A handler's locations are relative to its entry: make them point into this body.
            prefix = ["body"]
            if batch and hasattr(exc, "entry_index"):
                prefix = ["body", "entries", exc.entry_index]
                exc.message = f"entries[{exc.entry_index}]: {exc.message}"
            if exc.detail:
                exc.detail = [{**item, "loc": [*prefix, *item.get("loc", [])]} for item in exc.detail]
            raise
        return Response({"data": {"eventIds": [str(event.pk) for event in events]}}, status=201)
