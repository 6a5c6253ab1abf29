"""The base of every management command: a service's refusal is the command's error.

Services raise ``sbt_site.errors.ServiceError`` with a message written for people; a command
turns it into ``CommandError`` with that message (Django prints it and exits with status 1),
never a traceback. ``service_error_hint`` adds what the operator can do next.
"""

from django.core.management.base import BaseCommand, CommandError

from audit.context import acting_as_command
from sbt_site.errors import ServiceError


class ServiceCommand(BaseCommand):
    service_error_hint: str = ""  # e.g. "List tenants with: manage.py tenant_list"

    def execute(self, *args, **options):
        try:
            with acting_as_command(type(self).__module__.rsplit(".", 1)[-1]):
                return super().execute(*args, **options)
        except ServiceError as exc:
            raise CommandError(self.service_error_message(exc)) from exc

    def service_error_message(self, exc: ServiceError) -> str:
        if not self.service_error_hint:
            return exc.message
        # "Tenant x not found." must not end in ".." before the hint
        return f"{exc.message.rstrip('.')}. {self.service_error_hint}"
