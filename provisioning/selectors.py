"""Reads of the provisioning app, for the console and the commands."""

from uuid import UUID

from django.db.models import QuerySet

from provisioning.models import ProvisioningRun


def provisioning_run_list(*, tenant_id: UUID | str | None = None) -> QuerySet[ProvisioningRun]:
    """Runs, newest first, with their job; only those against ``tenant_id`` when given."""
    runs = ProvisioningRun.objects.select_related("job", "event").order_by("-created")
    if tenant_id is not None:
        runs = runs.filter(tenant_id=tenant_id)
    return runs
