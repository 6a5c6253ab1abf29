"""What a stolen database dump gives away: no client secret, access token or refresh token."""

import base64
import hashlib
import secrets
import shutil
import subprocess
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from accounts.services import machine_client_ensure, oauth_client_create, user_client_ensure

pytestmark = pytest.mark.django_db(transaction=True)
CALLBACK = "http://127.0.0.1:9/callback"


def pg_dump() -> str:
    params = connection.get_connection_params()
    command = [
        shutil.which("pg_dump") or "pg_dump",
        "--data-only",
        "--host",
        str(params.get("host") or "127.0.0.1"),
        "--port",
        str(params.get("port") or 5432),
        "--username",
        params.get("user") or "postgres",
        params["dbname"],
    ]
    env = {"PGPASSWORD": params.get("password") or "", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def user_tokens(client_id: str) -> dict:
    user = get_user_model().objects.create_user(
        username="carol", password="correct horse battery staple", role="SystemAdmin"
    )
    browser = APIClient()
    browser.force_login(user)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    response = browser.get(
        "/o/authorize/",
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "scope": "user/user_read",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    code = parse_qs(urlsplit(response["Location"]).query)["code"][0]
    token = APIClient().post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.content
    return token.json()


def test_a_database_dump_holds_no_secret_or_token_in_clear():
    _, client_secret = oauth_client_create(name="integration", scopes=["user/user_read"])
    machine, machine_secret = machine_client_ensure()
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{machine.client_id}:{machine_secret}".encode()).decode()
    )
    machine_token = client.post("/o/token/", {"grant_type": "client_credentials"}).json()["access_token"]
    tokens = user_tokens(user_client_ensure(redirect_uris=[CALLBACK]).client_id)

    dumpdata = StringIO()
    call_command("dumpdata", stdout=dumpdata)
    for dump in (pg_dump(), dumpdata.getvalue()):
        assert machine.client_id in dump, "the dump is real: it holds the client ids"
        for secret in (client_secret, machine_secret, machine_token, tokens["access_token"], tokens["refresh_token"]):
            assert secret not in dump
            # nor the JWT's signature alone
            assert secret.rsplit(".", 1)[-1] not in dump
