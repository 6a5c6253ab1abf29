"""How events are spelled on the wire (events/catalogue.py): current SBT by default, SBT before
0.9 behind SBT["EVENT_NAME_STYLE"] = "legacy", both spellings accepted inbound."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from billing.models import BillingUser
from events import catalogue
from events.models import Event
from tenants.tests.factories import tenant_registration_onboard

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"
REPORTER = "events/events_write tenant/tenant_write"
USERS_REPORTER = "events/events_write user/user_write"


def test_default_is_current_sbt():
    """SBT 0.9+ (src/utils/event-manager.ts): every standard event gets the sbt_aws_ prefix, and
    the sources are sbt.control.plane / sbt.application.plane."""
    assert catalogue.event_name_style() == "sbt_aws"
    assert [catalogue.wire_name(name) for name in ("onboardingRequest", "provisionSuccess", "tenantUserCreated")] == [
        "sbt_aws_onboardingRequest",
        "sbt_aws_provisionSuccess",
        "sbt_aws_tenantUserCreated",
    ]
    assert (catalogue.control_plane_source(), catalogue.application_plane_source()) == (
        "sbt.control.plane",
        "sbt.application.plane",
    )


@pytest.mark.parametrize("style", ["legacy", "plain"])
def test_legacy_switches_names_and_sources(settings, style):
    """SBT before 0.9: plain names, sources controlPlaneEventSource / applicationPlaneEventSource."""
    settings.SBT = {"EVENT_NAME_STYLE": style}
    assert catalogue.event_name_style() == "legacy"
    assert catalogue.wire_name("onboardingRequest") == "onboardingRequest"
    assert (catalogue.control_plane_source(), catalogue.application_plane_source()) == (
        "controlPlaneEventSource",
        "applicationPlaneEventSource",
    )


def test_configured_sources_override_the_styles(settings):
    settings.SBT = {"EVENT_SOURCE_CONTROL_PLANE": "acme.control", "EVENT_SOURCE_APPLICATION_PLANE": "acme.app"}
    assert (catalogue.control_plane_source(), catalogue.application_plane_source()) == ("acme.control", "acme.app")
    assert catalogue.wire_name("offboardingRequest") == "sbt_aws_offboardingRequest"


def test_an_unknown_style_is_a_configuration_error(settings):
    settings.SBT = {"EVENT_NAME_STYLE": "camel"}
    with pytest.raises(ImproperlyConfigured, match="sbt_aws, legacy, plain"):
        catalogue.wire_name("onboardingRequest")


def _settings_value(style: str) -> subprocess.CompletedProcess:
    code = "import django; django.setup(); from django.conf import settings; print(settings.SBT['EVENT_NAME_STYLE'])"
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "sbt_site.settings", "SBT_EVENT_NAME_STYLE": style}
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)


def test_the_style_is_read_from_the_environment_and_checked_at_start():
    legacy = _settings_value("legacy")
    assert legacy.returncode == 0, legacy.stderr
    assert legacy.stdout.strip() == "legacy"
    wrong = _settings_value("sbt-aws")
    assert wrong.returncode != 0
    assert "SBT_EVENT_NAME_STYLE must be one of sbt_aws, legacy, plain, not 'sbt-aws'" in wrong.stderr


def test_onboarding_request_goes_out_with_the_configured_source(settings, django_capture_on_commit_callbacks):
    settings.SBT = {"EVENT_NAME_STYLE": "legacy"}
    registration = tenant_registration_onboard("acme")
    assert Event.objects.get(detail_type="onboardingRequest").source == "controlPlaneEventSource"
    settings.SBT = {}
    tenant_registration_onboard("globex")
    sources = Event.objects.filter(detail_type="onboardingRequest").exclude(
        detail__tenantId=str(registration.tenant_id)
    )
    assert [event.source for event in sources] == ["sbt.control.plane"]


@pytest.mark.parametrize("style", ["sbt_aws", "legacy"])
@pytest.mark.parametrize(
    ("detail_type", "source"),
    [
        ("sbt_aws_provisionSuccess", "sbt.application.plane"),
        ("provisionSuccess", "applicationPlaneEventSource"),
        ("provisionSuccess", None),
    ],
)
def test_results_are_accepted_in_either_spelling_whatever_the_style(settings, api, style, detail_type, source):
    """sbt_aws_ is reserved for the standard events, so stripping it can never make one custom
    name read as another: both SBT versions' application planes are understood."""
    settings.SBT = {"EVENT_NAME_STYLE": style}
    registration = tenant_registration_onboard("acme")
    entry = {"detail-type": detail_type, "detail": {"tenantRegistrationId": str(registration.pk)}}
    if source is not None:
        entry["source"] = source
    response = api(scopes=REPORTER).post(URL, entry, format="json")
    assert response.status_code == 201, response.content
    registration.refresh_from_db()
    assert registration.status == "created"
    stored = Event.objects.get(direction=Event.Direction.INBOUND)
    assert stored.detail_type == "provisionSuccess"
    assert stored.source == (source or catalogue.application_plane_source())


@pytest.mark.parametrize("style", ["sbt_aws", "legacy"])
@pytest.mark.parametrize("source", ["sbt.control.plane", "controlPlaneEventSource", " ControlPlaneEventSource "])
def test_no_version_of_the_control_planes_source_may_be_sent(settings, api, style, source):
    """A receiver built for either SBT version trusts its control plane's source: neither is a
    client's to use, whichever style this control plane speaks."""
    settings.SBT = {"EVENT_NAME_STYLE": style}
    response = api().post(URL, {"detail-type": "myCustomEvent", "source": source, "detail": {}}, format="json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "source"]
    assert not Event.objects.exists()


# --- tenantUserCreated / tenantUserDeleted from the application plane (legacy style) -----------


@pytest.fixture
def customer_tenant(django_capture_on_commit_callbacks):
    """A tenant onboarded with its subscribers run: billing has its customer (local provider)."""
    with django_capture_on_commit_callbacks(execute=True):
        registration = tenant_registration_onboard("acme")
    return registration.tenant


def _user_event(detail_type: str, tenant_id, user_name: str = "ann", **extra) -> dict:
    return {
        "detail-type": detail_type,
        "source": "applicationPlaneEventSource",
        "detail": {"tenantId": str(tenant_id), "userName": user_name, **extra},
    }


def test_legacy_application_plane_drives_billings_users(
    settings, api, customer_tenant, django_capture_on_commit_callbacks
):
    """SBT before 0.9: "sbt-aws components do not emit this event. This event should be emitted
    by the application plane" (its DetailType enum); IBilling's createUser/deleteUser follow."""
    settings.SBT = {"EVENT_NAME_STYLE": "legacy"}
    client = api(scopes=USERS_REPORTER)
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(
            URL, _user_event("tenantUserCreated", customer_tenant.pk, email="ann@acme.example"), format="json"
        )
    assert created.status_code == 201, created.content
    user = BillingUser.objects.get(customer__tenant=customer_tenant)
    assert (user.user_name, user.email, user.status) == ("ann", "ann@acme.example", BillingUser.Status.ACTIVE)
    assert user.provider_user_id == f"local_user_{customer_tenant.pk.hex}_ann"

    with django_capture_on_commit_callbacks(execute=True):
        deleted = client.post(URL, _user_event("tenantUserDeleted", customer_tenant.pk), format="json")
    assert deleted.status_code == 201, deleted.content
    user.refresh_from_db()
    assert user.status == BillingUser.Status.DELETED
    stored = Event.objects.filter(direction=Event.Direction.INBOUND).values_list("detail_type", "source")
    assert sorted(stored) == [
        ("tenantUserCreated", "applicationPlaneEventSource"),
        ("tenantUserDeleted", "applicationPlaneEventSource"),
    ]


@pytest.mark.parametrize("detail_type", ["tenantUserCreated", "sbt_aws_tenantUserDeleted"])
def test_in_the_current_style_user_events_are_the_control_planes(api, customer_tenant, detail_type):
    """SBT 0.9 made them control-plane events: sent in, they are refused as any other."""
    response = api().post(URL, _user_event(detail_type, customer_tenant.pk), format="json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "detail-type"]
    assert not BillingUser.objects.exists()


def test_legacy_user_events_pass_the_same_checks_as_any_inbound_event(settings, api, customer_tenant):
    settings.SBT = {"EVENT_NAME_STYLE": "legacy"}
    other = tenant_registration_onboard("globex").tenant
    inbound = Event.objects.filter(direction=Event.Direction.INBOUND)

    # The scope of the operation it performs: creating a user is user/user_write.
    events_only = api(scopes="events/events_write")
    assert events_only.post(URL, _user_event("tenantUserCreated", other.pk), format="json").status_code == 403
    # A tenant-bound client speaks of its own tenant only.
    bound = api(scopes=USERS_REPORTER, tenant=customer_tenant)
    assert bound.post(URL, _user_event("tenantUserCreated", other.pk), format="json").status_code == 403
    # Still never as the control plane.
    forged = {**_user_event("tenantUserCreated", other.pk), "source": "controlPlaneEventSource"}
    assert api().post(URL, forged, format="json").status_code == 422
    # What billing could never apply is the client's error, not a subscriber retried until dead.
    unknown = api().post(URL, _user_event("tenantUserCreated", "8a1b9c3e-0000-4000-8000-000000000000"), format="json")
    assert unknown.status_code == 404
    for detail in ({"userName": "ann"}, {"tenantId": "not-a-uuid", "userName": "ann"}, {"tenantId": str(other.pk)}):
        response = api().post(URL, {"detail-type": "tenantUserCreated", "detail": detail}, format="json")
        assert response.status_code == 422, (detail, response.content)
        assert response.json()["detail"][0]["loc"][:2] == ["body", "detail"]
    assert not inbound.exists()
    assert not BillingUser.objects.exists()
