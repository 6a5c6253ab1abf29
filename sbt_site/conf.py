"""The control plane's own settings namespace.

Everything configurable about the control plane lives in one ``SBT`` dict in Django settings and
is read through ``sbt_settings``, which fills in the defaults below. Reading happens on access,
so ``override_settings(SBT={...})`` works in tests.

Apps add their defaults to ``DEFAULTS`` here (one place to read them all).
"""

import os

from django.conf import settings

# Every scope the authorization server knows, with the description shown to users and in the
# OpenAPI document.
SCOPE_DESCRIPTIONS = {
    "tenant/tenant_read": "Read tenants and tenant registrations",
    "tenant/tenant_write": "Create, update, offboard and (de)activate tenants and registrations",
    "user/user_read": "Read users",
    "user/user_write": "Create, update, delete, enable and disable users",
    "meter/meter_read": "Read meters",
    "meter/meter_write": "Create, update and delete meters",
    "usage/usage_read": "Query usage",
    "usage/usage_write": "Ingest and cancel usage events",
    "events/events_write": "Publish events to the control plane",
    "billing/billing_read": "Read billing customers and usage pushes",
}


# The values SBT["EVENT_NAME_STYLE"] accepts (events/catalogue.py says what each means).
EVENT_NAME_STYLES = ("sbt_aws", "legacy", "plain")


def _webhook_allowed_networks() -> list[str]:
    """EVENT_WEBHOOK_ALLOWED_NETWORKS from the environment: comma-separated CIDRs; set, even
    empty, it replaces the default (loopback in development, so a local application plane works
    with `./sbt run`; nothing in production). events.egress parses it; a bad entry stops start-up."""
    value = os.environ.get("EVENT_WEBHOOK_ALLOWED_NETWORKS")
    if value is None:
        return [] if os.environ.get("SBT_ENV") == "production" else ["127.0.0.0/8", "::1/128"]
    return [item.strip() for item in value.split(",") if item.strip()]


def _metrics_allowed_networks() -> list[str]:
    """SBT_METRICS_ALLOWED_NETWORKS from the environment: comma-separated CIDRs that may scrape
    /metrics without the token; set, even empty, it replaces the default (loopback in
    development, nothing in production: there /metrics is off until configured)."""
    value = os.environ.get("SBT_METRICS_ALLOWED_NETWORKS")
    if value is None:
        return [] if os.environ.get("SBT_ENV") == "production" else ["127.0.0.0/8", "::1/128"]
    return [item.strip() for item in value.split(",") if item.strip()]


DEFAULTS = {
    # Pagination (CONTRACT.md "Basics").
    "PAGE_SIZE_DEFAULT": 10,
    "PAGE_SIZE_MAX": 100,
    # Event bus (events app).
    # How standard events are spelled on the wire (events/catalogue.py, SBT_EVENT_NAME_STYLE):
    # "sbt_aws" as SBT 0.9 and later (sbt_aws_onboardingRequest, sources sbt.control.plane and
    # sbt.application.plane), or "legacy" as SBT before 0.9 (onboardingRequest, sources
    # controlPlaneEventSource and applicationPlaneEventSource); "plain" is an old alias of "legacy".
    "EVENT_NAME_STYLE": "sbt_aws",
    # The two sources; empty: the style's (set, as SBT's EventManager props, they override it).
    "EVENT_SOURCE_CONTROL_PLANE": "",
    "EVENT_SOURCE_APPLICATION_PLANE": "",
    # False simulates a process that dies between commit and enqueue (the sweep recovers).
    "EVENT_DISPATCH_ON_COMMIT": True,
    # Undispatched events older than this are picked up by the periodic sweep.
    "EVENT_SWEEP_GRACE_SECONDS": 30,
    # GET /readyz fails while the oldest undispatched event is older than this (the sweep,
    # every 15 s, dispatches what is past the grace period: more means workers or broker are stuck).
    "READY_OUTBOX_LAG_SECONDS": 300,
    # In-process subscribers: attempts before a handler run is dead, and the backoff base.
    "EVENT_HANDLER_MAX_ATTEMPTS": 8,
    "EVENT_HANDLER_BACKOFF_SECONDS": 10,
    # Scope needed by each API operation, keyed by SBT's IAuth operation names. A view declares
    # the operation it performs; the scope it needs is looked up here.
    "SCOPES": {
        "fetchTenantRegistration": "tenant/tenant_read",
        "fetchAllTenantRegistrations": "tenant/tenant_read",
        "createTenantRegistration": "tenant/tenant_write",
        "updateTenantRegistration": "tenant/tenant_write",
        "deleteTenantRegistration": "tenant/tenant_write",
        "activateTenantRegistration": "tenant/tenant_write",
        "deactivateTenantRegistration": "tenant/tenant_write",
        "fetchTenant": "tenant/tenant_read",
        "fetchAllTenants": "tenant/tenant_read",
        "createTenant": "tenant/tenant_write",
        "updateTenant": "tenant/tenant_write",
        "deleteTenant": "tenant/tenant_write",
        "fetchUser": "user/user_read",
        "fetchAllUsers": "user/user_read",
        "createUser": "user/user_write",
        "updateUser": "user/user_write",
        "deleteUser": "user/user_write",
        "disableUser": "user/user_write",
        "enableUser": "user/user_write",
        "fetchMeter": "meter/meter_read",
        "fetchAllMeters": "meter/meter_read",
        "createMeter": "meter/meter_write",
        "updateMeter": "meter/meter_write",
        "deleteMeter": "meter/meter_write",
        "ingestUsage": "usage/usage_write",
        "cancelUsage": "usage/usage_write",
        "fetchUsage": "usage/usage_read",
        "putEvents": "events/events_write",
        "fetchBilling": "billing/billing_read",
    },
    # The operations a tenant-bound caller (a client bound to a tenant, or a tenant user's token)
    # may perform, each on its own tenant's objects only (accounts/boundary.py). Anything not
    # listed is refused to them with 403, so a new operation starts out as the operator's alone:
    # tenant records, registrations, meters and provisioning results are never a tenant's to change.
    "TENANT_OPERATIONS": [
        "fetchTenantRegistration",
        "fetchAllTenantRegistrations",
        "fetchTenant",
        "fetchAllTenants",
        "fetchUser",
        "fetchAllUsers",
        "createUser",
        "updateUser",
        "deleteUser",
        "disableUser",
        "enableUser",
        "fetchMeter",
        "fetchAllMeters",
        "ingestUsage",
        "cancelUsage",
        "fetchUsage",
        "putEvents",
        "fetchBilling",
    ],
    # IAuth (accounts app).
    # Reverse proxies in front of the server that append the address they saw to X-Forwarded-For:
    # the client's address, which failed logins are counted under, is the one the outermost saw
    # (accounts.lockout.client_ip). 0 trusts no header: the peer's address (SBT_TRUSTED_PROXY_COUNT).
    "TRUSTED_PROXY_COUNT": 0,
    # The ``aud`` of access tokens; empty means SBT_PUBLIC_URL + "/api/v1/".
    "AUTH_JWT_AUDIENCE": "",
    # API requests one OAuth client may make (a user's token: one client and user), in DRF's rate
    # syntax, counted in fixed windows on the shared cache (sbt_site/api/throttling.py); empty or
    # None: no limit. 100 a second on average: far above what a person or an application plane
    # that batches its usage sends, low enough that one stolen credential cannot take a server's
    # whole capacity (docs/operations.md "Throttling and lockout").
    "API_RATE_LIMIT": "6000/min",
    # GET /users page size maximum (SBT's Cognito limit).
    "USERS_PAGE_SIZE_MAX": 60,
    # Scopes of the machine client an application plane uses to report back (machine_client_create).
    # (usage/usage_write: SBT's application plane reports usage with ingestUsage events.)
    "AUTH_MACHINE_CLIENT_SCOPES": ["tenant/tenant_write", "events/events_write", "usage/usage_write"],
    # The most a user's token may carry, by the user's role (SBT's userRole): a token issued to a
    # user (authorization code, refresh) gets requested ∩ client's ∩ role's scopes. A role not
    # listed here gets no scopes (deny by default). A tenant user's token is also bound to its tenant
    # (sbt_site.api.permissions.client_tenant_id), so TenantAdmin writes stay in its own tenant.
    # Machine (client-credentials) tokens are not affected. Configured roles are merged with these.
    "ROLE_SCOPES": {
        "SystemAdmin": list(SCOPE_DESCRIPTIONS),
        "TenantAdmin": [
            "tenant/tenant_read",
            "user/user_read",
            "user/user_write",
            "meter/meter_read",
            "usage/usage_read",
            "usage/usage_write",
        ],
        "TenantUser": ["tenant/tenant_read", "meter/meter_read", "usage/usage_read"],
    },
    # Roles that must be bound to a tenant: a user with one of these and no tenant gets no scopes
    # (unbound, its token would reach every tenant), and the API refuses to create or update such
    # a user without tenantId (422).
    "TENANT_ROLES": ["TenantAdmin", "TenantUser"],
    # --- events app: outbound webhooks and inbound /events ---
    # Each delivery attempt: seconds to connect, and to wait for each read of the answer, so a
    # receiver that hangs cannot hold a worker.
    "EVENT_DELIVERY_CONNECT_TIMEOUT_SECONDS": 3.0,
    "EVENT_DELIVERY_READ_TIMEOUT_SECONDS": 10.0,
    # ... and the most one attempt may take in all (connect, headers, body): the read timeout is
    # per read, so a receiver that drips its answer a byte at a time would otherwise hold a worker.
    "EVENT_DELIVERY_TOTAL_TIMEOUT_SECONDS": 30.0,
    # Attempts before a delivery is dead (dead-letter), and the exponential backoff's base and cap.
    "EVENT_DELIVERY_MAX_ATTEMPTS": 8,
    "EVENT_DELIVERY_BACKOFF_SECONDS": 10.0,
    "EVENT_DELIVERY_BACKOFF_MAX_SECONDS": 3600.0,
    # The sweep queues a due delivery again only when the task last queued for it was due this
    # long ago and has not sent it (a task the broker lost, a worker killed mid-attempt, a
    # subscription whose in-flight slots stayed taken): a deep queue is not queued twice.
    "EVENT_DELIVERY_REQUEUE_SECONDS": int(os.environ.get("SBT_EVENT_DELIVERY_REQUEUE_SECONDS", "60")),
    # Attempts of one subscription under way at once, across every worker (0: no limit): a
    # receiver that hangs holds at most this many worker slots (events/services/deliveries.py).
    "EVENT_DELIVERY_IN_FLIGHT_PER_SUBSCRIPTION": int(
        os.environ.get("SBT_EVENT_DELIVERY_IN_FLIGHT_PER_SUBSCRIPTION", "2")
    ),
    # Key that encrypts subscription signing secrets at rest; empty derives one from SECRET_KEY.
    "EVENT_SECRET_ENCRYPTION_KEY": "",
    # Networks outbound webhooks may reach although they are not public (loopback, private,
    # link-local, ...): everything else non-public is refused (events/egress.py, docs/events.md).
    "EVENT_WEBHOOK_ALLOWED_NETWORKS": _webhook_allowed_networks(),
    # Most entries one POST /events may carry (EventBridge PutEvents allows 10).
    "EVENT_INBOUND_MAX_ENTRIES": 10,
    # The external bus (EventBridge, SBT_PROVIDERS["events"]): attempts before an event's
    # publication is dead (the operator replays it), and the backoff's base and cap. 30 attempts
    # capped at 15 min ride out about four hours of the bus being unreachable.
    "EVENT_BUS_MAX_ATTEMPTS": 30,
    "EVENT_BUS_BACKOFF_SECONDS": 5.0,
    "EVENT_BUS_BACKOFF_MAX_SECONDS": 900.0,
    # Billing (billing app).
    # The provider's webhook is POST /api/v1/billing/<BILLING_WEBHOOK_PATH>.
    "BILLING_WEBHOOK_PATH": os.environ.get("BILLING_WEBHOOK_PATH", "stripe/webhook"),
    # Each push re-reads this many hours of closed windows, so late or cancelled usage is corrected.
    "BILLING_PUSH_LOOKBACK_HOURS": 72,
    # Metering (metering app).
    "USAGE_MAX_BATCH": 1000,  # events per POST /usage
    # POST /usage requests of at most this many events sent concurrently to one server process
    # share one transaction (group commit, metering/group_commit.py); 0 turns sharing off.
    "USAGE_GROUP_COMMIT_MAX_EVENTS": 50,
    # Most events one group commit writes in its transaction (the requests of a group together).
    "USAGE_GROUP_COMMIT_MAX_GROUP_EVENTS": 1000,
    # Usage events accepted per tenant per minute, on every face but the operator's file import
    # (metering/services/quota.py); 0: no quota. 1,000 a second, sustained, per tenant: more than
    # a tenant's normal traffic, so that one tenant (or a stolen key) cannot take the ingestion
    # capacity of every other; it should be at least USAGE_MAX_BATCH, or a full batch never fits.
    "USAGE_EVENTS_PER_MINUTE_PER_TENANT": 60_000,
    "USAGE_MAX_BACKDATE_DAYS": 35,  # older events are refused
    "USAGE_MAX_FUTURE_SECONDS": 300,  # events further in the future are refused (clock skew allowance)
    "USAGE_PARTITIONS_AHEAD_MONTHS": 2,  # monthly partitions of the raw event table created ahead
    "USAGE_QUERY_MAX_WINDOWS": 10000,  # windows one usage query may span
    # GET /metrics (sbt_site/metrics_endpoint.py): a bearer token Prometheus presents, and the
    # networks that may scrape without it; with neither, the route is a 404.
    "METRICS_TOKEN": os.environ.get("SBT_METRICS_TOKEN", ""),
    "METRICS_ALLOWED_NETWORKS": _metrics_allowed_networks(),
    # The access key an Amazon Data Firehose stream sends to POST /api/v1/usage/firehose
    # (metering/api/firehose.py); empty turns that endpoint off.
    "USAGE_FIREHOSE_ACCESS_KEY": os.environ.get("USAGE_FIREHOSE_ACCESS_KEY", ""),
    # ... and the largest delivery it takes, inflated: Firehose buffers 1 to 64 MiB before it
    # sends; set the stream's buffer size at most this.
    "USAGE_FIREHOSE_MAX_BODY_BYTES": int(os.environ.get("USAGE_FIREHOSE_MAX_BODY_BYTES", 8 * 1024 * 1024)),
    # Provisioning (provisioning app, docs/provisioning.md).
    "PROVISIONING_MAX_CONCURRENT_RUNS": 4,  # scripts running at once, across every worker
    "PROVISIONING_LEASE_SECONDS": 60,  # a running run whose worker stops renewing this long is retried
    "PROVISIONING_LOG_MAX_BYTES": 1_000_000,  # the log keeps its last this many bytes
    "PROVISIONING_OUTPUT_MAX_BYTES": 65_536,  # a bigger $SBT_OUTPUT file fails the run
    "PROVISIONING_KILL_GRACE_SECONDS": 5,  # between SIGTERM and SIGKILL at the timeout
}


class SbtSettings:
    """Attribute access to ``settings.SBT`` with defaults; dict values are merged one level."""

    def __getattr__(self, name: str):
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown SBT setting {name!r}")
        configured = getattr(settings, "SBT", {})
        default = DEFAULTS[name]
        if name not in configured:
            return default
        value = configured[name]
        if isinstance(default, dict) and isinstance(value, dict):
            return {**default, **value}
        return value


sbt_settings = SbtSettings()
