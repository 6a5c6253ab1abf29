"""Create or update provisioning jobs from a file written by provisioning_jobs_export."""

import json

from django.core.management.base import CommandError

from provisioning import services
from sbt_site.management.base import ServiceCommand


class Command(ServiceCommand):
    help = "Create or update (by name) the provisioning jobs of a JSON job file; one invalid job and none is imported."

    def add_arguments(self, parser):
        parser.add_argument("file", help="a file written by provisioning_jobs_export")

    def handle(self, *args, file, **options):
        try:
            with open(file, encoding="utf-8") as handle:
                document = json.load(handle)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise CommandError(f"{file} is not JSON: {exc}") from None
        created, updated = services.provisioning_jobs_import(document=document)
        self.stdout.write(f"Imported {file}: {created} job(s) created, {updated} updated")
