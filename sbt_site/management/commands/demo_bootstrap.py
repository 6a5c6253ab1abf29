"""Prepare the embedded default for a first look: an operator account, a demo OAuth client and
two demo tenants (onboarded through the tenants service when there are none).

Idempotent: run by ``./sbt run`` every time; it creates only what is missing and prints how to
log in. The generated credentials are kept in ``var/`` (mode 0600) so they can be shown again —
this is for the embedded default only; production uses ``createsuperuser`` and
``oauth_client_create``.
"""

import json
import random
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import OAuthApplication
from accounts.services import oauth_client_create
from metering.interface import MeterSpec
from metering.models import Meter
from metering.services import meter_create, usage_events_ingest
from sbt_site.conf import SCOPE_DESCRIPTIONS
from sbt_site.management.base import ServiceCommand
from tenants.models import Tenant
from tenants.services import tenant_registration_create

DEMO_USERNAME = "admin"
DEMO_CLIENT_NAME = "demo client (all scopes)"
DEMO_TENANTS = (
    {
        "tenantName": "acme",
        "email": "ops@acme.example.com",
        "tier": "premium",
        "prices": [{"id": "price_demo_api_calls", "metricName": "api_calls"}],
    },
    {
        "tenantName": "globex",
        "email": "it@globex.example.com",
        "tier": "basic",
        "prices": [{"id": "price_demo_api_calls", "metricName": "api_calls"}],
    },
)
DEMO_METERS = (
    MeterSpec(
        api_name="api_calls",
        label="API calls",
        aggregation="SUM",
        dimensions=("region",),
        unit="calls",
        description="Demo meter: calls to the product's API, by region.",
    ),
    MeterSpec(
        api_name="active_users",
        label="Active users",
        aggregation="UNIQUE_COUNT",
        unique_property="userId",
        unit="users",
        description="Demo meter: distinct users seen.",
    ),
)
DEMO_USAGE_DAYS = 30


def _demo_usage(tenant_ids: list, now: datetime) -> list[dict]:
    """A month of hourly usage per demo tenant, with eventIds fixed by (tenant, hour, kind) so that
    seeding twice stores nothing twice. Seeded random, so every run draws the same chart."""
    rng = random.Random(42)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=DEMO_USAGE_DAYS)
    events = []
    for tenant_index, tenant_id in enumerate(tenant_ids):
        scale = 40 if tenant_index == 0 else 12
        for hour in range(DEMO_USAGE_DAYS * 24):
            at = start + timedelta(hours=hour, minutes=rng.randrange(60))
            daytime = 8 <= at.hour <= 18
            events.append(
                {
                    "eventId": f"demo-{tenant_id}-{hour}-calls",
                    "meterApiName": "api_calls",
                    "tenantId": str(tenant_id),
                    "meterValue": rng.randint(scale // 2, scale * (3 if daytime else 1)),
                    "timestamp": at.isoformat(),
                    "dimensions": {"region": rng.choice(("eu-west-1", "us-east-1"))},
                }
            )
            events.append(
                {
                    "eventId": f"demo-{tenant_id}-{hour}-user",
                    "meterApiName": "active_users",
                    "tenantId": str(tenant_id),
                    "meterValue": 1,
                    "userId": f"user-{rng.randrange(scale)}",
                    "timestamp": at.isoformat(),
                }
            )
    return events


def _write_private(path, text: str) -> None:
    path.touch(mode=0o600)
    path.write_text(text)


class Command(ServiceCommand):
    help = "Create the demo operator account and OAuth client if missing, and print how to use them."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="The URL the server will listen on")

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("demo_bootstrap is for the embedded default, not SBT_ENV=production")
        password_file = settings.VAR_DIR / "demo-admin-password"
        client_file = settings.VAR_DIR / "demo-client.json"
        User = get_user_model()
        with transaction.atomic():
            operator = User.objects.filter(username=DEMO_USERNAME).first()
            if operator is None or not password_file.exists():
                password = secrets.token_urlsafe(12)
                operator = operator or User(username=DEMO_USERNAME, email="admin@example.com", role="SystemAdmin")
                operator.is_staff = operator.is_superuser = True
                operator.set_password(password)
                operator.save()
                _write_private(password_file, password)
            client = json.loads(client_file.read_text()) if client_file.exists() else None
            if client is None or not OAuthApplication.objects.filter(client_id=client["clientId"]).exists():
                application, secret = oauth_client_create(name=DEMO_CLIENT_NAME, scopes=list(SCOPE_DESCRIPTIONS))
                client = {"clientId": application.client_id, "clientSecret": secret}
                _write_private(client_file, json.dumps(client))
            if not Tenant.objects.exists():
                for tenant_data in DEMO_TENANTS:
                    tenant_registration_create(tenant_data=dict(tenant_data))
        if not Meter.objects.exists():
            for spec in DEMO_METERS:
                meter_create(spec=spec)
            demo_tenants = Tenant.objects.filter(name__in=[t["tenantName"] for t in DEMO_TENANTS], active=True)
            events = _demo_usage([tenant.pk for tenant in demo_tenants], timezone.now())
            for offset in range(0, len(events), 1000):
                usage_events_ingest(events=events[offset : offset + 1000])
            self.stdout.write(
                f"Seeded demo meters {', '.join(m.api_name for m in DEMO_METERS)} with {len(events)} usage events"
            )
        url = options["url"].rstrip("/")
        # The machine client an application plane reports back with (its id is in /auth-info).
        call_command("machine_client_create", stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("The control plane is ready."))
        self.stdout.write(f"  Admin:      {url}/admin/   user {DEMO_USERNAME}   password {password_file.read_text()}")
        self.stdout.write(f"  API docs:   {url}/api/schema/swagger-ui/")
        self.stdout.write(f"  Health:     {url}/healthz")
        self.stdout.write(f"  Demo OAuth client (all scopes): id {client['clientId']}")
        self.stdout.write(f"                                  secret {client['clientSecret']}")
        self.stdout.write(
            f"  Get a token: curl -s -u {client['clientId']}:{client['clientSecret']} "
            f"-d grant_type=client_credentials {url}/o/token/"
        )
        for tenant in Tenant.objects.filter(active=True).order_by("created")[:5]:
            self.stdout.write(f"  Tenant:     {tenant.name} ({tenant.tier})   id {tenant.pk}")
