import json

from accounts.services import oauth_client_create
from sbt_site.management.base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "Create an OAuth client (client-credentials grant) and print its id and secret. "
        "The secret is stored hashed: this is the only time it is shown."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="A name for the client, e.g. 'application plane'")
        parser.add_argument(
            "--scopes", required=True, help='Space-separated scopes, e.g. "tenant/tenant_read tenant/tenant_write"'
        )
        parser.add_argument("--tenant", help="Bind the client to this tenant id: it will see only that tenant")
        parser.add_argument("--json", action="store_true", help='Print {"clientId": ..., "clientSecret": ...}')

    def handle(self, *args, **options):
        application, secret = oauth_client_create(
            name=options["name"], scopes=options["scopes"].split(), tenant_id=options["tenant"]
        )
        if options["json"]:
            self.stdout.write(json.dumps({"clientId": application.client_id, "clientSecret": secret}))
            return
        self.stdout.write(self.style.SUCCESS(f"Created OAuth client {application.name!r}"))
        self.stdout.write(f"  client id:     {application.client_id}")
        self.stdout.write(f"  client secret: {secret}")
        self.stdout.write(f"  scopes:        {application.allowed_scopes}")
        if application.tenant_id:
            self.stdout.write(f"  tenant:        {application.tenant_id}")
        self.stdout.write(self.style.WARNING("Store the secret now: it is kept hashed and cannot be shown again."))
        self.stdout.write(
            "Get a token: curl -u CLIENT_ID:CLIENT_SECRET -d grant_type=client_credentials <server>/o/token/"
        )
