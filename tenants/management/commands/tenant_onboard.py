"""Onboard a tenant from the command line: the same service as POST /tenant-registrations."""

import json

from django.core.management.base import CommandError

from sbt_site.management.base import ServiceCommand
from tenants.services import tenant_registration_create


class Command(ServiceCommand):
    help = "Onboard a tenant (creates the tenant and its registration, emits onboardingRequest)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="tenant name (tenantName)")
        parser.add_argument("--email", required=True, help="contact email of the tenant")
        parser.add_argument("--tier", required=True, help="tier, e.g. basic or premium")
        parser.add_argument(
            "--data",
            default="{}",
            help="more tenantData keys as a JSON object, e.g. "
            '\'{"prices": [{"id": "price_1", "metricName": "calls"}]}\'',
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **options):
        try:
            extra = json.loads(options["data"])
        except ValueError as error:
            raise CommandError(
                f'--data is not valid JSON ({error}); pass an object such as \'{{"region": "eu"}}\''
            ) from None
        if not isinstance(extra, dict):
            raise CommandError('--data must be a JSON object, such as \'{"region": "eu"}\'')
        tenant_data = {**extra, "tenantName": options["name"], "email": options["email"], "tier": options["tier"]}
        registration = tenant_registration_create(tenant_data=tenant_data)
        result = {"tenantId": str(registration.tenant_id), "tenantRegistrationId": str(registration.pk)}
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Onboarding of {options['name']} initiated: tenant {result['tenantId']}, "
                    f"registration {result['tenantRegistrationId']} (status In progress)."
                )
            )
