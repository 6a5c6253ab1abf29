"""Metering customers: a tenant becomes one when it is onboarded and stops reporting usage when
it is offboarded (metering/handlers.py calls these from the event bus)."""

from uuid import UUID

from django.db import transaction

from metering.services.common import provider


def metering_customer_create(*, tenant_id: UUID) -> None:
    with transaction.atomic():
        provider().create_customer(tenant_id)


def metering_customer_delete(*, tenant_id: UUID) -> None:
    with transaction.atomic():
        provider().delete_customer(tenant_id)
