"""POST /api/v1/events: the application plane publishes events to the control plane."""

import pytest

from events import registry
from events.models import Event, HandlerRun
from sbt_site.errors import NotFound
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"
# What a provisioning result needs: putEvents and updateTenantRegistration (the machine client's scopes).
REPORTER = "events/events_write tenant/tenant_write"
applied: list[tuple[dict, object]] = []
subscribed: list[str] = []


@pytest.fixture(autouse=True)
def probe_handlers():
    """An inbound handler that refuses unknown ids (as the registration handler does) and an
    in-process subscriber of a custom type."""
    applied.clear()
    subscribed.clear()

    def apply_probe(detail, *, client_tenant_id):
        if detail.get("probeId") == "unknown":
            raise NotFound(f"Probe not found for id {detail['probeId']}")
        applied.append((detail, client_tenant_id))

    def remember(event):
        subscribed.append(event.detail_type)

    registry.inbound_handler("probeApplied", operation="putEvents")(apply_probe)
    registry.subscriber("probeApplied", "somethingCustom", name="tests.inbound.remember")(remember)
    yield
    registry._inbound_handlers.pop("probeApplied", None)
    registry._subscribers.pop("probeApplied", None)
    registry._subscribers.pop("somethingCustom", None)


def test_one_entry_is_stored_applied_and_dispatched(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(scopes="events/events_write").post(
            URL,
            {"detail-type": "sbt_aws_probeApplied", "source": "my.app.plane", "detail": {"probeId": "p-1"}},
            format="json",
        )
    assert response.status_code == 201, response.json()
    (event_id,) = response.json()["data"]["eventIds"]
    event = Event.objects.get(pk=event_id)
    assert (event.detail_type, event.source, event.direction) == ("probeApplied", "my.app.plane", "inbound")
    assert event.detail == {"probeId": "p-1"}
    assert applied == [({"probeId": "p-1"}, None)]
    assert subscribed == ["probeApplied"]
    assert event.dispatched_at is not None


def test_a_batch_is_stored_in_order_and_unknown_types_reach_subscribers(api, django_capture_on_commit_callbacks):
    entries = [
        {"detail-type": "somethingCustom", "detail": {"n": 1}},
        {"detail-type": "probeApplied", "source": "sbt.application.plane", "detail": {"probeId": "p-2"}},
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = api(scopes="events/events_write").post(URL, {"entries": entries}, format="json")
    assert response.status_code == 201
    ids = response.json()["data"]["eventIds"]
    stored = [Event.objects.get(pk=event_id) for event_id in ids]
    assert [event.detail_type for event in stored] == ["somethingCustom", "probeApplied"]
    assert stored[0].source == "sbt.application.plane", "the application plane's source is the default"
    assert sorted(subscribed) == ["probeApplied", "somethingCustom"]


def test_tenant_bound_client_is_passed_to_inbound_handlers(api):
    tenant = Tenant.objects.create(name="acme")
    response = api(scopes="events/events_write", tenant=tenant).post(
        URL, {"detail-type": "probeApplied", "detail": {"probeId": "p-3"}}, format="json"
    )
    assert response.status_code == 201
    assert applied == [({"probeId": "p-3"}, tenant.pk)]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"source": "x", "detail": {}}, ["body", "detail-type"]),
        ({"detail-type": "", "detail": {}}, ["body", "detail-type"]),
        ({"detail-type": "probeApplied", "detail": "not an object"}, ["body", "detail"]),
        ({"detail-type": "probeApplied", "detail": [1, 2]}, ["body", "detail"]),
        ({"detail-type": "probeApplied"}, ["body", "detail"]),
        ({"detail-type": "x" * 129, "detail": {}}, ["body", "detail-type"]),
        ({"detail-type": "sbt_aws_onboardingRequest", "detail": {}}, ["body", "detail-type"]),
        # Near-misses a receiver comparing loosely would take for the standard events.
        ({"detail-type": "OnboardingRequest", "detail": {}}, ["body", "detail-type"]),
        ({"detail-type": "sbt_aws_sbt_aws_onboardingRequest", "detail": {}}, ["body", "detail-type"]),
        ({"detail-type": "SBT_AWS_activateSuccess", "detail": {}}, ["body", "detail-type"]),
        ({"detail-type": "ProvisionSuccess", "detail": {}}, ["body", "detail-type"]),
        ({"detail-type": "provisionSucces", "detail": {}}, ["body", "detail-type"]),
        # Only the control plane speaks as the control plane.
        ({"detail-type": "probeApplied", "source": "sbt.control.plane", "detail": {}}, ["body", "source"]),
        ({"detail-type": "probeApplied", "source": " SBT.Control.Plane ", "detail": {}}, ["body", "source"]),
        ({"detail-type": "probeApplied", "detail": {"nested": [{"text": "nul\u0000"}]}}, ["body", "detail"]),
        ({"detail-type": "probe\u0000Applied", "detail": {}}, ["body", "detail-type"]),
        ('{"detail-type": "probeApplied", "detail": {"n": 1e999}}', ["body", "detail"]),
        ('{"detail-type": "probeApplied", "detail": {"\\ud800": 1}}', ["body", "detail"]),
        ('{"detail-type": "probeApplied", "detail": {"a": ["\\u0000"]}}', ["body", "detail"]),
        ('{"detail-type": "probe\\udc00", "detail": {}}', ["body", "detail-type"]),
        ('{"detail-type": "probeApplied", "source": "\\ud800", "detail": {}}', ["body", "source"]),
        ({"entries": []}, ["body", "entries"]),
        ({"entries": "nope"}, ["body", "entries"]),
        ([{"detail-type": "probeApplied", "detail": {}}], ["body"]),
    ],
)
def test_bad_input_is_a_422_and_stores_nothing(api, body, loc):
    client = api(scopes="events/events_write")
    if isinstance(body, str):  # raw JSON that a JSON encoder would refuse to produce
        response = client.post(URL, body, content_type="application/json")
    else:
        response = client.post(URL, body, format="json")
    assert response.status_code == 422, response.json()
    error = response.json()
    assert error["statusCode"] == 422 and error["code"] == "validation_error"
    assert error["detail"][0]["loc"] == loc
    assert not Event.objects.exists()
    assert applied == []


def test_every_bad_entry_of_a_batch_is_named_by_index(api):
    entries = [
        {"detail-type": "probeApplied", "detail": {"probeId": "fine"}},
        {"detail": {}},
        {"detail-type": "probeApplied", "detail": "oops"},
    ]
    response = api(scopes="events/events_write").post(URL, {"entries": entries}, format="json")
    assert response.status_code == 422
    locs = [item["loc"] for item in response.json()["detail"]]
    assert locs == [["body", "entries", 1, "detail-type"], ["body", "entries", 2, "detail"]]
    assert not Event.objects.exists() and applied == []


def test_oversized_batch_is_refused(api, settings):
    settings.SBT = {"EVENT_INBOUND_MAX_ENTRIES": 3}
    entries = [{"detail-type": "probeApplied", "detail": {"probeId": str(n)}} for n in range(4)]
    response = api(scopes="events/events_write").post(URL, {"entries": entries}, format="json")
    assert response.status_code == 422
    assert "At most 3 entries" in response.json()["message"]
    assert not Event.objects.exists() and applied == []


def test_a_handler_refusing_one_entry_rolls_back_the_whole_batch(api, django_capture_on_commit_callbacks):
    entries = [
        {"detail-type": "probeApplied", "detail": {"probeId": "p-4"}},
        {"detail-type": "probeApplied", "detail": {"probeId": "unknown"}},
    ]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api(scopes="events/events_write").post(URL, {"entries": entries}, format="json")
    assert response.status_code == 404
    assert response.json() == {
        "statusCode": 404,
        "message": "entries[1]: Probe not found for id unknown",
        "code": "not_found",
    }
    assert not Event.objects.exists()
    assert callbacks == [] and subscribed == [] and not HandlerRun.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        '{"detail-type": "x", "detail": NaN}',
        '{"detail-type": "x", "detail": {"deep": ' + "[" * 50_000 + "]" * 50_000 + "}}",
    ],
)
def test_malformed_json_is_a_400(api, body):
    response = api(scopes="events/events_write").post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert not Event.objects.exists()


def test_scope_is_required(api):
    body = {"detail-type": "probeApplied", "detail": {}}
    assert api(scopes=None).post(URL, body, format="json").status_code == 401
    assert api(scopes="tenant/tenant_write").post(URL, body, format="json").status_code == 403
    assert not Event.objects.exists()


def test_the_event_names_its_sender_in_storage_and_in_every_delivery(
    api, make_oauth_client, receiver, django_capture_on_commit_callbacks
):
    from accounts.tokens import access_token_issue
    from events.services import event_publish, subscription_create
    from events.tests.conftest import verify_signature

    _, secret = subscription_create(url=receiver.url, event_types=["somethingCustom", "onboardingRequest"])
    application, _ = make_oauth_client(scopes="events/events_write")
    _, token = access_token_issue(application=application, scope="events/events_write", user=None, lifetime=60)
    client = api(scopes=None)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, {"detail-type": "somethingCustom", "detail": {"n": 1}}, format="json")
        event_publish(detail_type="onboardingRequest", detail={"tenantId": "t-1"})
    assert response.status_code == 201, response.json()
    (event_id,) = response.json()["data"]["eventIds"]
    assert Event.objects.get(pk=event_id).sender == application.client_id

    relayed, own = sorted(receiver.requests, key=lambda received: received.json["detail-type"] != "somethingCustom")
    assert verify_signature(secret, relayed.headers, relayed.body)
    assert relayed.json["sender"] == {"clientId": application.client_id}
    assert relayed.json["source"] == "sbt.application.plane"
    assert "sender" not in own.json, "the control plane's own events name no sender"


def test_a_refused_entry_stores_nothing_of_the_batch(api):
    """Authorization comes before anything is stored or applied, for every entry."""
    entries = [
        {"detail-type": "probeApplied", "detail": {"probeId": "p-5"}},
        {"detail-type": "provisionSuccess", "detail": {"tenantRegistrationId": "8a1b9c3e-0000-4000-8000-000000000000"}},
    ]
    response = api(scopes="events/events_write").post(URL, {"entries": entries}, format="json")
    assert response.status_code == 403
    assert response.json() == {"statusCode": 403, "message": "Forbidden", "code": "forbidden"}
    assert not Event.objects.exists() and applied == []


# --- With the tenants app's inbound handlers (provisionSuccess & co.) -------------------------


@pytest.fixture
def registration(db):
    from tenants.services import tenant_registration_create

    return tenant_registration_create(tenant_data={"tenantName": "globex", "tier": "basic"})


def test_provision_success_updates_registration_and_tenant_like_the_patch(api, registration):
    response = api(scopes=REPORTER).post(
        URL,
        {
            "detail-type": "provisionSuccess",
            "source": "sbt.application.plane",
            "detail": {
                "tenantRegistrationId": str(registration.pk),
                "jobOutput": {"tenantData": {"tenantConfig": {"a": 1}}, "tenantRegistrationData": {"job": "j-1"}},
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    registration.refresh_from_db()
    assert registration.status == "created" and registration.data["job"] == "j-1"
    assert registration.tenant.config == {"a": 1}
    assert api(scopes=None).get(f"/api/v1/tenant-config?tenantId={registration.tenant_id}").json() == {"a": 1}


def test_provision_failure_is_recorded(api, registration):
    response = api(scopes=REPORTER).post(
        URL,
        {
            "detail-type": "sbt_aws_provisionFailure",
            "detail": {"tenantRegistrationId": str(registration.pk), "reason": "quota"},
        },
        format="json",
    )
    assert response.status_code == 201
    registration.refresh_from_db()
    assert registration.status == "failed" and registration.status_reason == "quota"


@pytest.mark.parametrize("registration_id", ["8a1b9c3e-0000-4000-8000-000000000000", "not-a-uuid"])
def test_unknown_registration_is_a_404_and_nothing_is_stored(api, registration, registration_id):
    events_before = Event.objects.count()  # the registration's own onboardingRequest
    entries = [
        {"detail-type": "provisionSuccess", "detail": {"tenantRegistrationId": str(registration.pk)}},
        {"detail-type": "provisionSuccess", "detail": {"tenantRegistrationId": registration_id}},
    ]
    response = api(scopes=REPORTER).post(URL, {"entries": entries}, format="json")
    assert response.status_code == 404
    assert response.json()["message"] == f"entries[1]: Tenant registration not found for id {registration_id}"
    assert Event.objects.count() == events_before
    registration.refresh_from_db()
    assert registration.status == "In progress", "the valid first entry was rolled back too"

    single = api(scopes=REPORTER).post(URL, entries[1], format="json")
    assert single.status_code == 404
    assert single.json()["message"] == f"Tenant registration not found for id {registration_id}"


def test_handler_validation_errors_point_into_the_batch(api, registration):
    entries = [
        {"detail-type": "provisionSuccess", "detail": {"tenantRegistrationId": str(registration.pk)}},
        {"detail-type": "deprovisionSuccess", "detail": {"jobOutput": {}}},
    ]
    response = api(scopes=REPORTER).post(URL, {"entries": entries}, format="json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "entries", 1, "detail", "tenantRegistrationId"]
    registration.refresh_from_db()
    assert registration.status == "In progress"


def test_tenant_bound_client_cannot_report_for_another_tenant(api, registration):
    """Nor for its own (events/tests/test_inbound_boundary.py): provisioning results are not a
    tenant operation, so the refusal is a 403 before any lookup."""
    other = Tenant.objects.create(name="other")
    response = api(scopes=REPORTER, tenant=other).post(
        URL,
        {"detail-type": "provisionSuccess", "detail": {"tenantRegistrationId": str(registration.pk)}},
        format="json",
    )
    assert response.status_code == 403
    registration.refresh_from_db()
    assert registration.status == "In progress"


def test_openapi_documents_the_route_and_its_scope(client):
    document = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = document["paths"]["/api/v1/events"]["post"]
    assert operation["operationId"] == "putEvents"
    assert operation["security"] == [{"oauth2": ["events/events_write"]}]
