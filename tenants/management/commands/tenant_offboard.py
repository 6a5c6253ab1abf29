"""Offboard a tenant from the command line: the same service as DELETE /tenant-registrations/{id}."""

from django.core.management.base import BaseCommand, CommandError

from sbt_site.errors import ServiceError
from tenants.services import tenant_offboard


class Command(BaseCommand):
    help = "Offboard a tenant: mark it and its registration inactive and emit offboardingRequest."

    def add_arguments(self, parser):
        parser.add_argument("tenant_id", metavar="TENANT_ID", help="the tenant's id (see tenant_list)")

    def handle(self, *args, **options):
        try:
            registration = tenant_offboard(tenant_id=options["tenant_id"])
        except ServiceError as error:
            message = error.message.rstrip(".")  # "Tenant x not found." must not end in ".."
            raise CommandError(f"{message}. List tenants with: manage.py tenant_list") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Offboarding of tenant {registration.tenant_id} initiated (registration {registration.pk}, "
                f"status {registration.status})."
            )
        )
