"""Fixtures shared by every app's tests.

Tests run on the PostgreSQL that ``./sbt test`` starts. Celery runs eagerly; remember that a
test inside the ``db`` transaction only sees ``transaction.on_commit`` work (event dispatch)
when it wraps the call in ``django_capture_on_commit_callbacks(execute=True)``.
"""

import time

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.services import oauth_client_create
from accounts.tokens import access_token_issue
from sbt_site.conf import SCOPE_DESCRIPTIONS

ALL_SCOPES = " ".join(SCOPE_DESCRIPTIONS)


@pytest.fixture(autouse=True)
def _cache_cleared():
    """Every test starts with no request counted against a rate limit or quota (they count in
    the cache, which outlives a test)."""
    cache.clear()


@pytest.fixture
def minute_window():
    """For tests that count in windows of a minute (rate limits, quotas): starts them at least
    ten seconds before the current minute ends, so that no window ends in the middle of one."""
    left = 60 - time.time() % 60
    if left < 10:
        time.sleep(left)


@pytest.fixture
def make_oauth_client(db):
    """``make_oauth_client(scopes="a b", tenant=None) -> (application, secret)``."""

    def make(scopes: str = ALL_SCOPES, tenant=None, name: str = "test client"):
        return oauth_client_create(name=name, scopes=scopes.split(), tenant_id=tenant.pk if tenant else None)

    return make


@pytest.fixture
def make_token(make_oauth_client):
    """``make_token(scopes="a b", tenant=None, user=None) -> str``: a valid bearer token (a signed
    JWT, stored hashed like the ones /o/token/ issues) for a new client.

    The token row is written directly (tests about the token endpoint itself use /o/token/).
    """

    def make(scopes: str = ALL_SCOPES, tenant=None, expires_in: int = 3600, user=None) -> str:
        application, _ = make_oauth_client(scopes=scopes, tenant=tenant)
        _, raw = access_token_issue(application=application, scope=scopes, user=user, lifetime=expires_in)
        return raw

    return make


@pytest.fixture
def api(make_token):
    """``api(scopes="a b", tenant=None) -> APIClient`` authenticated with such a token;
    ``api(scopes=None)`` is an anonymous client."""

    def make(scopes: str | None = ALL_SCOPES, tenant=None) -> APIClient:
        client = APIClient()
        if scopes is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(scopes=scopes, tenant=tenant)}")
        return client

    return make
