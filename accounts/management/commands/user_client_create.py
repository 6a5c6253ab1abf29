from accounts.services import user_client_ensure
from sbt_site.management.base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "Create (or update the redirect URIs of) the public user client: browsers log users in with it through "
        "the authorization-code flow with PKCE S256. Its id is published by GET /api/v1/auth-info."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--redirect-uri",
            action="append",
            dest="redirect_uris",
            help="A callback URL, matched exactly at login (repeat for several)",
        )

    def handle(self, *args, **options):
        application = user_client_ensure(redirect_uris=options["redirect_uris"])
        self.stdout.write(self.style.SUCCESS(f"User client: {application.client_id}"))
        self.stdout.write(f"  redirect URIs: {application.redirect_uris}")
        self.stdout.write(
            "  flow: authorization code with PKCE S256 at <server>/o/authorize/, tokens at <server>/o/token/"
        )
