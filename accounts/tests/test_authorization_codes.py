"""Authorization codes: stored as digests, and a replayed code revokes what it produced
(RFC 6749 §4.1.2)."""

import hashlib
import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.utils import timezone
from oauth2_provider.models import get_grant_model
from oauthlib.common import Request as OAuthlibRequest
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError

from accounts.models import AuthorizationCodeExchange, OAuthApplication
from accounts.services import tokens_clear_expired
from accounts.tests.conftest import pkce_pair
from accounts.tokens import SbtOAuth2Validator, access_token_issue

pytestmark = pytest.mark.django_db(transaction=True)
Grant = get_grant_model()


def digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def test_a_replayed_code_revokes_the_tokens_it_produced(auth_server, person):
    person("carol")
    verifier, challenge = pkce_pair()
    code = auth_server.code(auth_server.login("carol"), challenge)
    first = auth_server.exchange(code, verifier).json()
    second = auth_server.refresh(first["refresh_token"]).json()  # rotations carry the code's family
    assert auth_server.api("users/carol", second["access_token"]).status_code == 200

    replay = auth_server.exchange(code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert "access_token" not in replay.json()
    assert auth_server.api("users/carol", first["access_token"]).status_code == 401
    assert auth_server.api("users/carol", second["access_token"]).status_code == 401
    assert auth_server.refresh(second["refresh_token"]).status_code == 400


def test_a_replay_revokes_nothing_else(auth_server, person):
    person("carol")
    verifier, challenge = pkce_pair()
    browser = auth_server.login("carol")
    code = auth_server.code(browser, challenge)
    from_code = auth_server.exchange(code, verifier).json()
    other_verifier, other_challenge = pkce_pair()
    other = auth_server.exchange(auth_server.code(browser, other_challenge), other_verifier).json()

    assert auth_server.exchange(code, verifier).status_code == 400
    assert auth_server.api("users/carol", from_code["access_token"]).status_code == 401
    assert auth_server.api("users/carol", other["access_token"]).status_code == 200, "another login's tokens"
    assert auth_server.refresh(other["refresh_token"]).status_code == 200


def test_codes_are_stored_as_digests(auth_server, person):
    person("carol")
    verifier, challenge = pkce_pair()
    code = auth_server.code(auth_server.login("carol"), challenge)
    assert not Grant.objects.filter(code=code).exists(), "a database read must not reveal a usable code"
    assert Grant.objects.filter(code=digest(code)).exists()
    assert auth_server.exchange(digest(code), verifier).status_code == 400, "the digest is not the code"
    assert auth_server.exchange(code, verifier).status_code == 200
    assert not Grant.objects.exists()
    assert AuthorizationCodeExchange.objects.filter(code_digest=digest(code)).exists()


def test_the_migration_hashes_codes_issued_before_it(auth_server, person):
    # A code issued (in clear) just before the upgrade still works after it.
    person("carol")
    verifier, challenge = pkce_pair()
    code = auth_server.code(auth_server.login("carol"), challenge)
    Grant.objects.filter(code=digest(code)).update(code=code)  # as the code was stored before
    migration = importlib.import_module("accounts.migrations.0003_code_exchange_and_hashed_grant_codes")
    migration.grant_codes_hash(django_apps, None)
    assert Grant.objects.get().code == digest(code)
    assert auth_server.exchange(code, verifier).status_code == 200


def test_exchange_records_are_cleared_with_expired_tokens(auth_server, person):
    person("carol")
    auth_server.user_tokens("carol")
    auth_server.user_tokens("carol")
    first, second = AuthorizationCodeExchange.objects.order_by("pk")
    AuthorizationCodeExchange.objects.filter(pk=first.pk).update(expires=timezone.now() - timedelta(seconds=1))
    tokens_clear_expired()
    assert list(AuthorizationCodeExchange.objects.values_list("pk", flat=True)) == [second.pk]


def test_the_loser_of_two_concurrent_exchanges_keeps_no_token(auth_server, person):
    # Two requests exchange one code at once: both pass validation and save tokens, and the one
    # that finds the Grant already deleted must not leave its (never delivered) tokens working.
    carol = person("carol")
    verifier, challenge = pkce_pair()
    code = auth_server.code(auth_server.login("carol"), challenge)
    winner = auth_server.exchange(code, verifier).json()
    user_client = OAuthApplication.objects.get(client_id=auth_server.user_client_id)
    loser_token, loser_raw = access_token_issue(application=user_client, user=carol, scope="user/user_read")
    request = OAuthlibRequest(auth_server.token_endpoint, http_method="POST")
    request.client, request.user, request.code_exchange_tokens = user_client, carol, (loser_token, None)

    with pytest.raises(InvalidGrantError):
        SbtOAuth2Validator().invalidate_authorization_code(user_client.client_id, code, request)
    assert auth_server.api("users/carol", loser_raw).status_code == 401
    assert auth_server.api("users/carol", winner["access_token"]).status_code == 401, "a code used twice leaked"
