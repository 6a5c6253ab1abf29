"""python manage.py usage_push [--tenant ID] [--dry-run]"""

from django.core.management.base import CommandError
from tqdm import tqdm

from billing import services
from sbt_site.management.base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "Push closed hourly usage windows since the last successful push to the billing provider, "
        "per tenant and price-mapped meter. Safe to run again: nothing is billed twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="TENANT_ID", help="only this tenant")
        parser.add_argument("--dry-run", action="store_true", help="show what would be sent, send nothing")

    def handle(self, *args, tenant=None, dry_run=False, **options):
        def progress(targets):
            return tqdm(targets, desc="tenants x meters", unit="meter", file=self.stderr, disable=not targets)

        result = services.usage_push_run(tenant_id=tenant, dry_run=dry_run, progress=progress)
        if not result.lines:
            self.stdout.write("Nothing to push: no active billing customer has a price mapped to a meter.")
            return
        header = ("tenant", "meter", "windows", "sent", "corrected", "retried", "unchanged", "failed", "value")
        rows = [
            (
                f"{line.tenant_name} ({line.tenant_id})",
                line.meter_api_name,
                line.windows,
                line.sent,
                line.corrected,
                line.retried,
                line.unchanged,
                line.failed + line.uncorrectable,
                f"{line.value_sent.normalize():f}",
            )
            for line in result.lines
        ]
        rows.append(
            (
                "total",
                "",
                result.total("windows"),
                result.total("sent"),
                result.total("corrected"),
                result.total("retried"),
                result.total("unchanged"),
                result.total("failed") + result.total("uncorrectable"),
                f"{result.total('value_sent').normalize():f}",
            )
        )
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            self.stdout.write("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
        if dry_run:
            self.stdout.write("Dry run: nothing was sent.")
        for line in result.lines:
            for error in line.errors:
                self.stderr.write(f"{line.tenant_name} / {line.meter_api_name}: {error}")
        if result.failed:
            raise CommandError(
                f"{result.failed} usage record(s) failed. They are kept and resent with the same identifier by "
                "the next run (or the admin's retry action); see Billing > Usage pushes for the errors."
            )
