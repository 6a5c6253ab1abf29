"""Fixtures shared by every app's tests.

Tests run on the PostgreSQL that ``./sbt test`` starts. Celery runs eagerly; remember that a
test inside the ``db`` transaction only sees ``transaction.on_commit`` work (event dispatch)
when it wraps the call in ``django_capture_on_commit_callbacks(execute=True)``.
"""

import secrets
from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import get_access_token_model
from rest_framework.test import APIClient

from accounts.services import oauth_client_create
from sbt_site.conf import SCOPE_DESCRIPTIONS

ALL_SCOPES = " ".join(SCOPE_DESCRIPTIONS)


@pytest.fixture
def make_oauth_client(db):
    """``make_oauth_client(scopes="a b", tenant=None) -> (application, secret)``."""

    def make(scopes: str = ALL_SCOPES, tenant=None, name: str = "test client"):
        return oauth_client_create(name=name, scopes=scopes.split(), tenant_id=tenant.pk if tenant else None)

    return make


@pytest.fixture
def make_token(make_oauth_client):
    """``make_token(scopes="a b", tenant=None) -> str``: a valid bearer token for a new client.

    The token row is written directly (tests about the token endpoint itself use /o/token/).
    """

    def make(scopes: str = ALL_SCOPES, tenant=None, expires_in: int = 3600) -> str:
        application, _ = make_oauth_client(scopes=scopes, tenant=tenant)
        raw = secrets.token_urlsafe(32)
        get_access_token_model().objects.create(
            application=application,
            token=raw,
            scope=scopes,
            expires=timezone.now() + timedelta(seconds=expires_in),
        )
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
