"""python manage.py billing_subscription_sync [--tenant ID ...]"""

from django.core.management.base import CommandError

from billing import services
from sbt_site.management.base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "Make tenants' subscriptions at the billing provider bill exactly their registered prices "
        "(after a tenant's prices changed). Default: every active billing customer. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--tenant", action="append", dest="tenant_ids", metavar="TENANT_ID", help="only this tenant (repeatable)"
        )

    def handle(self, *args, tenant_ids=None, **options):
        results = services.billing_subscriptions_sync(tenant_ids=tenant_ids)
        if not results:
            self.stdout.write("Nothing to sync: no active billing customer.")
            return
        for tenant_id, error in results:
            if error:
                self.stderr.write(f"{tenant_id}: {error}")
            else:
                self.stdout.write(f"{tenant_id}: in sync")
        failed = sum(1 for _, error in results if error)
        if failed:
            raise CommandError(f"{failed} of {len(results)} tenant(s) could not be synced; see above.")
