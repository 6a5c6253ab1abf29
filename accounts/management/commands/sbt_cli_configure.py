"""Write the SBT CLI's config file (sbt-aws scripts/sbt-aws.sh, ``~/.sbt-aws-config``) for this
control plane, with a token from a client-credentials OAuth client; ``--refresh`` renews it.

The script ``source``s the file and reads ``CONTROL_PLANE_API_ENDPOINT`` (the API's base URL,
ending in ``/``), ``ACCESS_TOKEN``, and ``EMAIL_USERNAME`` / ``EMAIL_DOMAIN`` (it names new
tenants' and users' emails ``EMAIL_USERNAME+tenant123@EMAIL_DOMAIN``). ``CONTROL_PLANE_STACK_NAME``
and ``ADMIN_USER_PASSWORD`` serve only its own ``configure`` / ``refresh-tokens``, which call AWS
(CloudFormation, Cognito): the first is written empty, the second never. ``SBT_TOKEN_URL`` and
``SBT_CLIENT_ID`` are ours, for ``--refresh``. The client secret is never written: it is read from
``SBT_CLIENT_SECRET`` or asked for, each time. The token is got the way any client gets one, over
HTTP from the server's ``/o/token/``, so the command works from any machine that can reach it.
"""

import getpass
import os
import shlex
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from django.conf import settings
from django.core.management.base import CommandError

from sbt_site.management.base import ServiceCommand

SECRET_ENV = "SBT_CLIENT_SECRET"
# The order sbt-aws.sh's own configure writes them in, then ours.
KEYS = (
    "CONTROL_PLANE_STACK_NAME",
    "CONTROL_PLANE_API_ENDPOINT",
    "EMAIL_USERNAME",
    "EMAIL_DOMAIN",
    "ACCESS_TOKEN",
    "SBT_TOKEN_URL",
    "SBT_CLIENT_ID",
)


def config_read(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines of a config file this command wrote (shell-quoted values)."""
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().isidentifier():
            words = shlex.split(value)
            values[key.strip()] = words[0] if words else ""
    return values


def config_write(path: Path, values: dict[str, str]) -> None:
    """Replace ``path`` atomically with a file only its owner can read (it holds a token)."""
    text = "".join(f"{key}={shlex.quote(values.get(key, ''))}\n" for key in KEYS)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def token_fetch(*, token_url: str, client_id: str, client_secret: str, scope: str = "") -> dict:
    """A client-credentials grant at ``token_url``: the token endpoint's JSON answer."""
    data = {"grant_type": "client_credentials"} | ({"scope": scope} if scope else {})
    try:
        response = requests.post(token_url, data=data, auth=(client_id, client_secret), timeout=30)
    except requests.RequestException as exc:
        raise CommandError(f"Cannot reach {token_url}: {exc}. Is the server running, and is --server right?") from None
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code != 200 or not isinstance(answer, dict) or "access_token" not in answer:
        error = answer.get("error", f"HTTP {response.status_code}") if isinstance(answer, dict) else response.text
        hint = (
            " Check the client id and its secret (create a client with: manage.py oauth_client_create "
            '--name "SBT CLI" --scopes "tenant/tenant_read tenant/tenant_write user/user_read user/user_write")'
            if error in ("invalid_client", "unauthorized_client")
            else ""
        )
        raise CommandError(f"{token_url} refused the client credentials: {error}.{hint}")
    return answer


class Command(ServiceCommand):
    help = (
        "Write the SBT CLI's config file (sbt-aws.sh reads ~/.sbt-aws-config) for this control plane, with an "
        f"access token of a client-credentials OAuth client; the client secret comes from ${SECRET_ENV} or a prompt "
        "and is never written. --refresh renews the token of a file written before."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--server",
            default=settings.SBT_PUBLIC_URL,
            help=f"The control plane's URL (default: SBT_PUBLIC_URL, {settings.SBT_PUBLIC_URL})",
        )
        parser.add_argument("--client-id", help="A client-credentials OAuth client (oauth_client_create)")
        parser.add_argument(
            "--email",
            help="Your email: sbt-aws.sh names new tenants' and users' emails after it (you+tenant123@example.com)",
        )
        parser.add_argument("--scope", default="", help="Scopes to ask for (default: every scope the client has)")
        parser.add_argument(
            "--config", default=str(Path.home() / ".sbt-aws-config"), help="The file to write (default: %(default)s)"
        )
        parser.add_argument(
            "--refresh", action="store_true", help="Renew the token of the file written before (same server, client)"
        )

    def handle(self, *args, **options):
        path = Path(options["config"]).expanduser()
        values = self._written_before(path) if options["refresh"] else self._new_values(options)
        secret = self._client_secret(values["SBT_CLIENT_ID"])
        answer = token_fetch(
            token_url=values["SBT_TOKEN_URL"],
            client_id=values["SBT_CLIENT_ID"],
            client_secret=secret,
            scope=options["scope"],
        )
        values["ACCESS_TOKEN"] = answer["access_token"]
        config_write(path, values)
        expires = datetime.now(UTC) + timedelta(seconds=int(answer.get("expires_in", 0)))
        self.stdout.write(self.style.SUCCESS(f"Wrote {path} (mode 0600)"))
        self.stdout.write(f"  endpoint: {values['CONTROL_PLANE_API_ENDPOINT']}")
        self.stdout.write(f"  scopes:   {answer.get('scope', '')}")
        self.stdout.write(
            f"  token valid until {expires:%Y-%m-%d %H:%M} UTC; renew it with: manage.py sbt_cli_configure --refresh"
        )
        self.stdout.write("Try: sbt-aws.sh get-all-tenants")

    def _new_values(self, options) -> dict[str, str]:
        if not options["client_id"] or not options["email"]:
            raise CommandError("--client-id and --email are needed (or --refresh to renew a file written before)")
        username, at, domain = options["email"].rpartition("@")
        if not at or not username or not domain:
            raise CommandError(f"--email {options['email']!r} is not an email address")
        server = options["server"].rstrip("/")
        if not server.startswith(("http://", "https://")):
            raise CommandError(f"--server {server!r} must be an http:// or https:// URL")
        return {
            "CONTROL_PLANE_STACK_NAME": "",
            "CONTROL_PLANE_API_ENDPOINT": f"{server}/api/v1/",
            "EMAIL_USERNAME": username,
            "EMAIL_DOMAIN": domain,
            "SBT_TOKEN_URL": f"{server}/o/token/",
            "SBT_CLIENT_ID": options["client_id"],
        }

    def _written_before(self, path: Path) -> dict[str, str]:
        try:
            values = config_read(path)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}. Write it first (without --refresh).") from None
        missing = [
            key for key in ("SBT_TOKEN_URL", "SBT_CLIENT_ID", "CONTROL_PLANE_API_ENDPOINT") if not values.get(key)
        ]
        if missing:
            raise CommandError(
                f"{path} was not written by this command (no {', '.join(missing)}): run it without --refresh first"
            )
        return values

    def _client_secret(self, client_id: str) -> str:
        secret = os.environ.get(SECRET_ENV)
        if secret:
            return secret
        if not sys.stdin.isatty():
            raise CommandError(f"Set {SECRET_ENV} to the secret of client {client_id} (or run this in a terminal)")
        return getpass.getpass(f"Secret of client {client_id}: ")
