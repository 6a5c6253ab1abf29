"""The API's bearer-token lookup (accounts/tokens/lookup.py ``access_token_load``), hand-written SQL
for speed, loads exactly what django-oauth-toolkit's ORM lookup loads."""

import hashlib

import pytest
from django.contrib.auth import get_user_model
from oauth2_provider.models import get_access_token_model

from accounts.services import oauth_client_create
from accounts.tokens import access_token_issue, access_token_load, access_tokens_load
from tenants.models import Tenant
from tenants.tests.factories import TenantFactory

User = get_user_model()
pytestmark = pytest.mark.django_db


def test_the_hand_written_token_lookup_loads_what_dot_loads_with_its_application_and_user(django_assert_num_queries):
    tenant = TenantFactory(name="acme")
    application, _ = oauth_client_create(name="bound", scopes=["tenant/tenant_read"], tenant_id=tenant.pk)
    user = User.objects.create_user("lookup-user", password="x" * 16, tenant=tenant, role="TenantAdmin")
    for owner in (None, user):
        _, raw = access_token_issue(application=application, scope="tenant/tenant_read", user=owner)
        expected = (
            get_access_token_model()
            .objects.select_related("application", "user")
            .get(token_checksum=hashlib.sha256(raw.encode()).hexdigest())
        )
        loaded = access_token_load(raw)  # one prepared statement (not in Django's query log)
        with django_assert_num_queries(0):  # application and user came with it, as select_related
            assert loaded.application.tenant_id == tenant.pk
            assert (loaded.user.pk if loaded.user else None) == (owner.pk if owner else None)
            # and whether their tenants are active (what the validator checks), nothing else of them
            assert loaded.application.tenant.active is True
            assert owner is None or loaded.user.tenant.active is True
            assert loaded.application.tenant.get_deferred_fields() == {
                field.attname for field in Tenant._meta.concrete_fields if field.attname not in ("id", "active")
            }
        for model_instance, reference in ((loaded, expected), (loaded.application, expected.application)):
            for field in type(reference)._meta.concrete_fields:
                assert getattr(model_instance, field.attname) == getattr(reference, field.attname), field.name
        if owner is not None:
            for field in User._meta.concrete_fields:
                assert getattr(loaded.user, field.attname) == getattr(expected.user, field.attname), field.name
        assert loaded.is_valid(["tenant/tenant_read"]) and not loaded.is_expired()
    assert access_token_load("not-a-token") is None


def test_the_token_lookup_sees_a_tenant_deactivated_since(django_assert_num_queries):
    active, inactive = TenantFactory(name="on"), TenantFactory(name="off", active=False)
    application, _ = oauth_client_create(name="bound", scopes=["tenant/tenant_read"], tenant_id=inactive.pk)
    unbound, _ = oauth_client_create(name="unbound", scopes=["tenant/tenant_read"])
    user = User.objects.create_user("off-user", password="x" * 16, tenant=inactive, role="TenantAdmin")
    other = User.objects.create_user("on-user", password="x" * 16, tenant=active, role="TenantAdmin")
    _, bound_raw = access_token_issue(application=application, scope="tenant/tenant_read")
    _, user_raw = access_token_issue(application=unbound, scope="tenant/tenant_read", user=user)
    _, other_raw = access_token_issue(application=unbound, scope="tenant/tenant_read", user=other)
    loaded = access_tokens_load([bound_raw, user_raw, other_raw])
    with django_assert_num_queries(0):
        assert loaded[bound_raw].application.tenant.active is False
        assert loaded[bound_raw].application.is_usable(None) is False
        assert loaded[user_raw].application.is_usable(None) is True
        assert loaded[user_raw].user.tenant_active is False
        assert loaded[other_raw].user.tenant_active is True
