"""Reads of the tenants app.

Lookups take ids as the client gave them (strings from a URL): a malformed id is simply not
found, never a 500. ``client_tenant_id`` is the tenant a tenant-bound client is limited to;
everything outside it is "not found", so ids do not leak.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db.models import F, QuerySet

from sbt_site.db import storable_text
from sbt_site.errors import NotFound
from sbt_site.ids import parse_uuid
from sbt_site.selectors import status_counts
from tenants.models import Tenant, TenantRegistration
from tenants.wire import config_document

logger = logging.getLogger(__name__)


def tenant_list(*, client_tenant_id: UUID | None = None) -> QuerySet[Tenant]:
    tenants = Tenant.objects.select_related("registration")
    if client_tenant_id is not None:
        tenants = tenants.filter(pk=client_tenant_id)
    return tenants


# The columns tenants.wire.tenant_row_to_wire reads. ``id`` and ``created`` keep their field
# names, so that sbt_site.api.pagination.paginate reads a row's cursor as it reads an instance's.
TENANT_ROW_COLUMNS = (
    "data", "id", "registration_id", "active", "name", "email", "tier", "prices", "config", "created", "modified"
)  # fmt: skip


def tenant_row_list(*, client_tenant_id: UUID | None = None) -> QuerySet:
    """``tenant_list`` as named rows of TENANT_ROW_COLUMNS (``registration_id`` None for a tenant
    created without a registration), for lists served whole: building a page of 100 model
    instances with their registrations was the largest CPU cost of ``GET /tenants``
    (docs/performance.md "Authenticated reads")."""
    tenants = Tenant.objects.annotate(registration_id=F("registration__id"))
    if client_tenant_id is not None:
        tenants = tenants.filter(pk=client_tenant_id)
    return tenants.values_list(*TENANT_ROW_COLUMNS, named=True)


def tenant_get(*, tenant_id, client_tenant_id: UUID | None = None, message: str | None = None) -> Tenant:
    """The tenant; NotFound (``Tenant not found for id <id>`` unless ``message``) otherwise."""
    parsed = parse_uuid(tenant_id)
    tenant = tenant_list(client_tenant_id=client_tenant_id).filter(pk=parsed).first() if parsed else None
    if tenant is None:
        raise NotFound(message or f"Tenant not found for id {tenant_id}")
    return tenant


def tenant_registration_list(*, client_tenant_id: UUID | None = None) -> QuerySet[TenantRegistration]:
    registrations = TenantRegistration.objects.select_related("tenant")
    if client_tenant_id is not None:
        registrations = registrations.filter(tenant_id=client_tenant_id)
    return registrations


def tenant_registration_get(*, registration_id, client_tenant_id: UUID | None = None) -> TenantRegistration:
    parsed = parse_uuid(registration_id)
    registration = None
    if parsed:
        registration = tenant_registration_list(client_tenant_id=client_tenant_id).filter(pk=parsed).first()
    if registration is None:
        raise NotFound(f"Tenant registration not found for id {registration_id}")
    return registration


def tenant_config_get(*, tenant_id=None, tenant_name: str | None = None):
    """The tenant config of an active tenant, found by id or else by name (CONTRACT.md).

    A name belongs to one tenant at a time (the tenants service refuses a second, 409), so a
    name finds at most one tenant. A tenant without a config is not found either, as in SBT
    (resources/functions/tenant-config/index.py): an application plane's front end polling
    for its config sees 404 until provisioning has reported one.
    """
    if tenant_id:
        parsed = parse_uuid(tenant_id)
        tenant = Tenant.objects.filter(pk=parsed, active=True).first() if parsed else None
        wanted = tenant_id
    else:
        tenant = None
        if storable_text(tenant_name):
            tenant = Tenant.objects.filter(name=tenant_name, active=True, deleted__isnull=True).first()
        wanted = tenant_name
    if tenant is None or tenant.config is None:
        raise NotFound(f"No tenant details found for {wanted}")
    return config_document(tenant.config)


@dataclass(frozen=True)
class TenantPrice:
    """A price a tenant is registered with: the billing provider's price id and the meter it bills."""

    price_id: str
    metric_name: str


def tenant_price_list(*, tenant_id=None, tenant: Tenant | None = None) -> list[TenantPrice]:
    """The prices of a tenant (``tenantData.prices``), in their registered order, for billing.

    Pass the ``tenant`` when it is loaded already (the usage push reads every customer's), else
    its ``tenant_id``. The rule is the wire's (tenants/wire.py): a price is an object with a
    non-empty string ``id`` and ``metricName``, other keys allowed. Only a write that bypassed
    the wire can store anything else; such an entry is skipped and logged, never a 500.
    """
    tenant = tenant if tenant is not None else tenant_get(tenant_id=tenant_id)
    prices = []
    for entry in tenant.prices if isinstance(tenant.prices, list) else [tenant.prices]:
        price_id = entry.get("id") if isinstance(entry, dict) else None
        metric_name = entry.get("metricName") if isinstance(entry, dict) else None
        if not (isinstance(price_id, str) and price_id and isinstance(metric_name, str) and metric_name):
            logger.warning("Tenant %s has a malformed price, skipped: %r", tenant.pk, entry)
            continue
        prices.append(TenantPrice(price_id=price_id, metric_name=metric_name))
    return prices


def tenant_status_counts() -> dict[str, int]:
    """How many tenants are in each registration status (``TenantRegistration.Status`` values,
    every status present, zero when none), for the operator's overview."""
    return status_counts(TenantRegistration.objects.all(), TenantRegistration.Status.values)


def tenant_registrations_stalled(*, started_before: datetime) -> QuerySet[TenantRegistration]:
    """Registrations still "In progress" that were started before ``started_before``: the
    application plane has not reported a provisioning result for them."""
    return tenant_registration_list().filter(status=TenantRegistration.Status.IN_PROGRESS, created__lt=started_before)
