"""Offboard a tenant from the command line: the same service as DELETE /tenant-registrations/{id}."""

from sbt_site.management.base import ServiceCommand
from tenants.services import tenant_offboard


class Command(ServiceCommand):
    help = "Offboard a tenant: mark it and its registration inactive and emit offboardingRequest."
    service_error_hint = "List tenants with: manage.py tenant_list"

    def add_arguments(self, parser):
        parser.add_argument("tenant_id", metavar="TENANT_ID", help="the tenant's id (see tenant_list)")

    def handle(self, *args, **options):
        registration = tenant_offboard(tenant_id=options["tenant_id"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Offboarding of tenant {registration.tenant_id} initiated (registration {registration.pk}, "
                f"status {registration.status})."
            )
        )
