"""SBT's standard events, their sources, and the wire spelling of their names.

Inside the control plane an event type is always its plain name (``onboardingRequest``). On the
wire it is spelled as ``SBT["EVENT_NAME_STYLE"]`` says: ``"plain"``, or ``"sbt_aws"`` for SBT's
``sbt_aws_onboardingRequest``. Inbound events are accepted in either spelling.
"""

from sbt_site.conf import sbt_settings

CONTROL_PLANE_EVENTS = (
    "onboardingRequest",
    "offboardingRequest",
    "activateRequest",
    "deactivateRequest",
    "tenantUserCreated",
    "tenantUserDeleted",
    "billingSuccess",
    "billingFailure",
)

APPLICATION_PLANE_EVENTS = (
    "provisionSuccess",
    "provisionFailure",
    "deprovisionSuccess",
    "deprovisionFailure",
    "activateSuccess",
    "activateFailure",
    "deactivateSuccess",
    "deactivateFailure",
    "onboardingSuccess",
    "onboardingFailure",
    "offboardingSuccess",
    "offboardingFailure",
    "ingestUsage",
)

STANDARD_EVENTS = CONTROL_PLANE_EVENTS + APPLICATION_PLANE_EVENTS

SBT_AWS_PREFIX = "sbt_aws_"


def canonical_name(name: str) -> str:
    """The plain name of an event type given in either spelling."""
    return name[len(SBT_AWS_PREFIX) :] if name.startswith(SBT_AWS_PREFIX) else name


def wire_name(name: str) -> str:
    """The name as sent to subscribers, in the configured spelling (standard events only)."""
    if sbt_settings.EVENT_NAME_STYLE == "sbt_aws" and name in STANDARD_EVENTS:
        return SBT_AWS_PREFIX + name
    return name


def control_plane_source() -> str:
    return sbt_settings.EVENT_SOURCE_CONTROL_PLANE


def application_plane_source() -> str:
    return sbt_settings.EVENT_SOURCE_APPLICATION_PLANE
