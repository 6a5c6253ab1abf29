"""List tenants with their registration status."""

import json

from sbt_site.management.base import ServiceCommand
from tenants.selectors import tenant_list
from tenants.wire import tenant_to_wire


class Command(ServiceCommand):
    help = "List tenants (id, name, tier, registration status, active, created)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print one JSON array of tenant objects (API shape)")

    def handle(self, *args, **options):
        tenants = tenant_list().order_by("created", "id")
        if options["json"]:
            # A streamed array: memory stays flat however many tenants there are.
            self.stdout.write("[", ending="")
            for index, tenant in enumerate(tenants.iterator(chunk_size=500)):
                registration = getattr(tenant, "registration", None)
                item = {**tenant_to_wire(tenant), "registrationStatus": registration.status if registration else None}
                self.stdout.write(("," if index else "") + json.dumps(item), ending="")
            self.stdout.write("]")
            return
        header = f"{'TENANT ID':36}  {'NAME':24}  {'TIER':10}  {'STATUS':11}  {'ACTIVE':6}  CREATED"
        self.stdout.write(header)
        count = 0
        for tenant in tenants.iterator(chunk_size=500):
            registration = getattr(tenant, "registration", None)
            status = registration.status if registration else "-"
            self.stdout.write(
                f"{tenant.pk!s:36}  {tenant.name[:24]:24}  {tenant.tier[:10]:10}  {status:11}  "
                f"{'yes' if tenant.active else 'no':6}  {tenant.created:%Y-%m-%d %H:%M}"
            )
            count += 1
        self.stdout.write(f"{count} tenant(s)")
