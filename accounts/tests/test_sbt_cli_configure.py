"""manage.py sbt_cli_configure: the SBT CLI's config file written against a live server, read
the way sbt-aws scripts/sbt-aws.sh reads it (bash ``source``), its token working on the routes
the script calls, with the bodies the script sends."""

import os
import stat
import subprocess
import uuid

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants.tests.test_sbt_cli_compat import sbt_cli_registration_body

CLI_SCOPES = "tenant/tenant_read tenant/tenant_write user/user_read user/user_write"
# What sbt-aws.sh reads from the file (its source_config, then ${...} in every command).
SCRIPT_KEYS = ("CONTROL_PLANE_API_ENDPOINT", "ACCESS_TOKEN", "EMAIL_USERNAME", "EMAIL_DOMAIN")


def sourced(path) -> dict[str, str]:
    """The variables the script gets from ``source "$CONFIG_FILE"``, by bash itself."""
    script = 'source "$1"; ' + " ".join(f'printf "%s\\0" "${key}";' for key in SCRIPT_KEYS)
    output = subprocess.run(["bash", "-c", script, "bash", str(path)], capture_output=True, check=True).stdout
    return dict(zip(SCRIPT_KEYS, output.decode().split("\0")[:-1], strict=True))


def configure(*args, secret: str, monkeypatch) -> None:
    monkeypatch.setenv("SBT_CLIENT_SECRET", secret)
    call_command("sbt_cli_configure", *args)


@pytest.fixture
def cli_client(make_oauth_client):
    return make_oauth_client(scopes=CLI_SCOPES, name="SBT CLI")


@pytest.mark.django_db(transaction=True)
def test_the_written_file_drives_the_scripts_calls_and_refreshes(live_server, cli_client, tmp_path, monkeypatch):
    application, secret = cli_client
    config = tmp_path / ".sbt-aws-config"
    config.write_text("ACCESS_TOKEN=old\n")
    config.chmod(0o644)
    configure(
        "--server", live_server.url, "--client-id", application.client_id, "--email", "ops@example.com",
        "--config", str(config), secret=secret, monkeypatch=monkeypatch,
    )  # fmt: skip
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert secret not in config.read_text()

    env = sourced(config)
    assert env["CONTROL_PLANE_API_ENDPOINT"] == f"{live_server.url}/api/v1/"
    assert (env["EMAIL_USERNAME"], env["EMAIL_DOMAIN"]) == ("ops", "example.com")
    auth = {"Authorization": f"Bearer {env['ACCESS_TOKEN']}"}
    base = env["CONTROL_PLANE_API_ENDPOINT"]

    # sbt-aws.sh create-tenant-registration: its body (scripts/sbt-aws.sh), the email made from the file's.
    tenant_name = "tenant12345"
    body = sbt_cli_registration_body(tenant_name)
    body["tenantData"]["email"] = f"{env['EMAIL_USERNAME']}+{tenant_name}@{env['EMAIL_DOMAIN']}"
    created = requests.post(f"{base}tenant-registrations", json=body, headers=auth, timeout=30)
    assert created.status_code == 201, created.text
    registration_id = created.json()["data"]["tenantRegistrationId"]
    # sbt-aws.sh create-user: its body, copied as data (scripts/sbt-aws.sh).
    user_name = "user12345"
    user = requests.post(
        f"{base}users",
        json={
            "userName": user_name,
            "email": f"{env['EMAIL_USERNAME']}+{user_name}@{env['EMAIL_DOMAIN']}",
            "userRole": "basicUser",
        },
        headers=auth,
        timeout=30,
    )
    assert user.status_code == 201, user.text
    # get-all-tenant-registrations, get-all-tenants (limit and an empty next_token, as curl -G sends them),
    # get-tenant-registration, get-all-users.
    for url in (
        f"{base}tenant-registrations?limit=10&next_token=",
        f"{base}tenants?limit=10&next_token=",
        f"{base}tenant-registrations/{registration_id}",
        f"{base}users?limit=10&next_token=",
    ):
        answer = requests.get(url, headers=auth, timeout=30)
        assert answer.status_code == 200, (url, answer.text)
    tenants = requests.get(f"{base}tenants?limit=10", headers=auth, timeout=30).json()["data"]
    assert [tenant["tenantName"] for tenant in tenants] == [tenant_name]

    # refresh-tokens: a new token in the same file, still 0600, working.
    configure("--refresh", "--config", str(config), secret=secret, monkeypatch=monkeypatch)
    refreshed = sourced(config)
    assert refreshed["ACCESS_TOKEN"] != env["ACCESS_TOKEN"]
    assert {key: refreshed[key] for key in SCRIPT_KEYS if key != "ACCESS_TOKEN"} == {
        key: env[key] for key in SCRIPT_KEYS if key != "ACCESS_TOKEN"
    }
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    answer = requests.get(
        f"{base}tenants?limit=10", headers={"Authorization": f"Bearer {refreshed['ACCESS_TOKEN']}"}, timeout=30
    )
    assert answer.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_wrong_secret_or_an_unreachable_server_says_what_to_do(live_server, cli_client, tmp_path, monkeypatch):
    application, _ = cli_client
    config = tmp_path / "config"
    with pytest.raises(CommandError, match=r"invalid_client.*oauth_client_create"):
        configure(
            "--server", live_server.url, "--client-id", application.client_id, "--email", "ops@example.com",
            "--config", str(config), secret="not-the-secret", monkeypatch=monkeypatch,
        )  # fmt: skip
    assert not config.exists()

    with pytest.raises(CommandError, match=r"Cannot reach .*--server"):
        configure(
            "--server", "http://127.0.0.1:9", "--client-id", application.client_id, "--email", "ops@example.com",
            "--config", str(config), secret="x", monkeypatch=monkeypatch,
        )  # fmt: skip


def test_bad_arguments_and_a_foreign_file_are_refused(tmp_path, monkeypatch):
    with pytest.raises(CommandError, match="--client-id and --email"):
        configure("--config", str(tmp_path / "c"), secret="x", monkeypatch=monkeypatch)
    with pytest.raises(CommandError, match="not an email"):
        configure("--client-id", "c", "--email", "nobody", secret="x", monkeypatch=monkeypatch)
    with pytest.raises(CommandError, match="Write it first"):
        configure("--refresh", "--config", str(tmp_path / "missing"), secret="x", monkeypatch=monkeypatch)
    sbt_written = tmp_path / ".sbt-aws-config"  # what sbt-aws.sh configure writes: no client to refresh with
    sbt_written.write_text("CONTROL_PLANE_STACK_NAME=cp\nCONTROL_PLANE_API_ENDPOINT=https://x/\nACCESS_TOKEN=t\n")
    with pytest.raises(CommandError, match="SBT_TOKEN_URL, SBT_CLIENT_ID"):
        configure("--refresh", "--config", str(sbt_written), secret="x", monkeypatch=monkeypatch)


def test_without_a_secret_and_no_terminal_it_says_which_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("SBT_CLIENT_SECRET", raising=False)
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # noqa: SIM115 (closed with the test's process)
    with pytest.raises(CommandError, match="Set SBT_CLIENT_SECRET"):
        call_command(
            "sbt_cli_configure", "--client-id", str(uuid.uuid4()), "--email", "a@b.c", "--config", str(tmp_path / "c")
        )
