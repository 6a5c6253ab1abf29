from accounts.services import admin_user_create
from sbt_site.management.base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "Create a control-plane operator (staff, superuser) if it does not exist yet, and print how to set "
        "its password. Running it again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The user name (SBT's userName), e.g. admin")
        parser.add_argument("--email", required=True, help="The operator's email address")
        parser.add_argument("--role", default="SystemAdmin", help="SBT's userRole (default SystemAdmin)")

    def handle(self, *args, **options):
        result = admin_user_create(name=options["name"], email=options["email"], role=options["role"])
        if result.created:
            self.stdout.write(self.style.SUCCESS(f"Created operator {result.user.user_name} ({result.user.user_role})"))
        else:
            self.stdout.write(f"Operator {result.user.user_name} already exists; nothing changed.")
        self.stdout.write(result.password_instructions)
