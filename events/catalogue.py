"""SBT's standard events, their sources, the wire spelling of their names, and what an
inbound event may claim to be.

Inside the control plane an event type is always its plain name (``onboardingRequest``). On the
wire it is spelled as ``SBT["EVENT_NAME_STYLE"]`` says, and the style also picks the sources:

- ``"sbt_aws"`` (default), as SBT 0.9 and later (src/utils/event-manager.ts):
  ``sbt_aws_onboardingRequest`` from ``sbt.control.plane``, ``sbt_aws_provisionSuccess`` from
  ``sbt.application.plane``;
- ``"legacy"`` (``"plain"`` is an alias), as SBT before 0.9: ``onboardingRequest`` from
  ``controlPlaneEventSource``, ``provisionSuccess`` from ``applicationPlaneEventSource``.

Inbound events are accepted in either spelling whatever the style: ``canonical_name`` strips
the prefix, and since ``sbt_aws_`` is reserved for the standard events (``name_refusal``) no
custom name can be read two ways.

An application-plane event reports something the control plane then records as if an API
operation had been called (``provisionSuccess`` updates a registration, ``ingestUsage`` stores
usage), so sending one is performing that IAuth operation. ``APPLICATION_PLANE_OPERATIONS``
declares which (an inbound handler restates it, checked against this at startup by
``events.registry.inbound_handler``); the tenant boundary (accounts.boundary) asks for that
operation, besides ``putEvents``, before anything is stored.
"""

from django.core.exceptions import ImproperlyConfigured

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

# The IAuth operation (a key of SBT["SCOPES"]) each application-plane event stands for. Every
# provisioning outcome reports on a registration, whether or not a handler applies it yet: a
# subscriber trusting an activateSuccess must be able to trust that its sender may change
# registrations. Only the operator and unbound integrations may (by default it is not one of
# SBT["TENANT_OPERATIONS"]).
APPLICATION_PLANE_OPERATIONS = {
    "provisionSuccess": "updateTenantRegistration",
    "provisionFailure": "updateTenantRegistration",
    "deprovisionSuccess": "updateTenantRegistration",
    "deprovisionFailure": "updateTenantRegistration",
    "activateSuccess": "updateTenantRegistration",
    "activateFailure": "updateTenantRegistration",
    "deactivateSuccess": "updateTenantRegistration",
    "deactivateFailure": "updateTenantRegistration",
    "onboardingSuccess": "updateTenantRegistration",
    "onboardingFailure": "updateTenantRegistration",
    "offboardingSuccess": "updateTenantRegistration",
    "offboardingFailure": "updateTenantRegistration",
    "ingestUsage": "ingestUsage",
}

APPLICATION_PLANE_EVENTS = tuple(APPLICATION_PLANE_OPERATIONS)

# SBT before 0.9 documented tenantUserCreated / tenantUserDeleted as the application plane's to
# emit, to drive IBilling's user functions (its DetailType enum: "sbt-aws components do not emit
# this event"); 0.9 made them the control plane's. In the legacy style the application plane may
# send them, as creating or deleting a tenant's user; the control plane still emits its own.
LEGACY_APPLICATION_PLANE_OPERATIONS = {
    "tenantUserCreated": "createUser",
    "tenantUserDeleted": "deleteUser",
}

# What sending any event is; a custom event type (not in the catalogue) needs nothing more
# unless an inbound handler of it declares more (events.registry.inbound_handler).
PUT_EVENTS_OPERATION = "putEvents"

STANDARD_EVENTS = CONTROL_PLANE_EVENTS + APPLICATION_PLANE_EVENTS

SBT_AWS_PREFIX = "sbt_aws_"


STYLE_SBT_AWS = "sbt_aws"
STYLE_LEGACY = "legacy"
STYLE_ALIASES = {"plain": STYLE_LEGACY}

# (control-plane source, application-plane source) of each style.
STYLE_SOURCES = {
    STYLE_SBT_AWS: ("sbt.control.plane", "sbt.application.plane"),
    STYLE_LEGACY: ("controlPlaneEventSource", "applicationPlaneEventSource"),
}


def event_name_style() -> str:
    """``"sbt_aws"`` or ``"legacy"``, from ``SBT["EVENT_NAME_STYLE"]`` (aliases resolved)."""
    configured = sbt_settings.EVENT_NAME_STYLE
    style = STYLE_ALIASES.get(configured, configured)
    if style not in STYLE_SOURCES:
        allowed = ", ".join([*STYLE_SOURCES, *STYLE_ALIASES])
        raise ImproperlyConfigured(f'SBT["EVENT_NAME_STYLE"] must be one of {allowed}, not {configured!r}')
    return style


def catalogue_operation(name: str) -> str | None:
    """The operation the application-plane event ``name`` (plain) stands for, or None when it
    is not one."""
    return APPLICATION_PLANE_OPERATIONS.get(name) or LEGACY_APPLICATION_PLANE_OPERATIONS.get(name)


def application_plane_may_send(name: str) -> bool:
    """Whether an inbound event may be of the type ``name`` (plain): anything but the control
    plane's events, except the user events in the legacy style."""
    if name not in CONTROL_PLANE_EVENTS:
        return True
    return name in LEGACY_APPLICATION_PLANE_OPERATIONS and event_name_style() == STYLE_LEGACY


def canonical_name(name: str) -> str:
    """The plain name of an event type given in either spelling."""
    return name[len(SBT_AWS_PREFIX) :] if name.startswith(SBT_AWS_PREFIX) else name


def wire_name(name: str) -> str:
    """The name as sent to subscribers, in the configured spelling (standard events only)."""
    if event_name_style() == STYLE_SBT_AWS and name in STANDARD_EVENTS:
        return SBT_AWS_PREFIX + name
    return name


def control_plane_source() -> str:
    return sbt_settings.EVENT_SOURCE_CONTROL_PLANE or STYLE_SOURCES[event_name_style()][0]


def is_control_plane_source(source: str) -> bool:
    """Whether ``source`` claims to be the control plane: its configured source or that of any
    SBT version (a receiver built for either may be listening), in any case, give or take
    spaces, since a receiver may compare loosely."""
    claimed = source.strip().casefold()
    control_plane_sources = {control_plane_source(), *(sources[0] for sources in STYLE_SOURCES.values())}
    return any(claimed == known.strip().casefold() for known in control_plane_sources)


def application_plane_source() -> str:
    return sbt_settings.EVENT_SOURCE_APPLICATION_PLANE or STYLE_SOURCES[event_name_style()][1]


# Two edits (a missing, extra, wrong or swapped letter each) are what typos make; the standard
# names are 11 characters or more, so custom names further away than that are left alone.
NEAR_MISS_DISTANCE = 2


def standard_name_near(name: str) -> str | None:
    """The standard event ``name`` is probably a typo of (another case, or at most two edits
    away), or None when it is a standard name or clearly a custom one."""
    if name in STANDARD_EVENTS:
        return None
    for standard in STANDARD_EVENTS:
        if _edit_distance(name.lower(), standard.lower()) <= NEAR_MISS_DISTANCE:
            return standard
    return None


def _edit_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (optimal string alignment): insertions, deletions,
    substitutions and swaps of two adjacent letters."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[i - 2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def name_refusal(name: str) -> str | None:
    """Why ``name`` (in either spelling) cannot name an event type, or None.

    One rule for the names subscriptions list and the names POST /events sends: a name may not
    carry the ``sbt_aws_`` prefix (any case) once its one optional prefix is removed
    (``sbt_aws_sbt_aws_onboardingRequest``), nor be a near-miss of a standard name
    (``OnboardingRequest``, ``onbordingRequest``): a receiver comparing loosely would take it
    for the standard event, and a subscription naming it would receive nothing.
    """
    plain = canonical_name(name)
    if plain.casefold().startswith(SBT_AWS_PREFIX):
        return f"{name!r} is not an event type: the {SBT_AWS_PREFIX} prefix is reserved for SBT's standard events"
    standard = standard_name_near(plain)
    if standard is not None:
        return (
            f"{name!r} is not an SBT event type: did you mean {standard!r}? (a custom event type must not "
            "be a near-miss of a standard one)"
        )
    return None
