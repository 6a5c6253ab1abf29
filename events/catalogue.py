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
