import json

from accounts.services import machine_client_ensure
from sbt_site.management.base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "Create the machine client (client credentials) an application plane uses to report back, unless it "
        "exists. Its id is published by GET /api/v1/auth-info. The secret is stored hashed: it is printed only "
        "when created or rotated."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rotate", action="store_true", help="Give it a new secret and revoke the tokens issued with the old one"
        )
        parser.add_argument("--json", action="store_true", help='Print {"clientId": ..., "clientSecret": ...}')

    def handle(self, *args, **options):
        application, secret = machine_client_ensure(rotate=options["rotate"])
        if options["json"]:
            self.stdout.write(json.dumps({"clientId": application.client_id, "clientSecret": secret}))
            return
        self.stdout.write(f"Machine client: {application.client_id}  scopes: {application.allowed_scopes}")
        if secret is None:
            self.stdout.write("It already exists; its secret is stored hashed. Use --rotate to get a new one.")
            return
        self.stdout.write(f"  client secret: {secret}")
        self.stdout.write(self.style.WARNING("Store the secret now: it is kept hashed and cannot be shown again."))
