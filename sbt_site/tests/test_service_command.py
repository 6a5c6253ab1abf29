"""ServiceCommand: a service's refusal is the command's error, with the service's message."""

from io import StringIO

import pytest
from django.core.management import CommandError

from sbt_site.errors import NotFound
from sbt_site.management.base import ServiceCommand


class Refusing(ServiceCommand):
    def handle(self, *args, **options):
        raise NotFound("Tenant x not found.")


class RefusingWithHint(Refusing):
    service_error_hint = "List tenants with: manage.py tenant_list"


def test_the_service_message_is_the_command_error():
    with pytest.raises(CommandError, match=r"^Tenant x not found\.$"):
        Refusing(stdout=StringIO(), stderr=StringIO()).execute(force_color=False, no_color=True, skip_checks=True)


def test_a_hint_follows_the_message_after_one_period():
    with pytest.raises(CommandError, match=r"^Tenant x not found\. List tenants with: manage.py tenant_list$"):
        RefusingWithHint(stdout=StringIO(), stderr=StringIO()).execute(
            force_color=False, no_color=True, skip_checks=True
        )


def test_from_the_command_line_it_is_printed_and_the_exit_status_is_1():
    err = StringIO()
    command = Refusing(stderr=err)
    with pytest.raises(SystemExit) as exit_info:
        command.run_from_argv(["manage.py", "refusing", "--skip-checks"])
    assert exit_info.value.code == 1
    assert "CommandError: Tenant x not found." in err.getvalue()
