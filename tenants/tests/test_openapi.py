"""The tenants routes in the OpenAPI document, each with the scope of CONTRACT.md."""

import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


def test_every_tenants_route_is_documented_with_its_scope(client):
    document = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    validate(document)
    paths = document["paths"]
    read, write = [{"oauth2": ["tenant/tenant_read"]}], [{"oauth2": ["tenant/tenant_write"]}]
    expected = {
        ("/api/v1/tenant-registrations", "get"): read,
        ("/api/v1/tenant-registrations", "post"): write,
        ("/api/v1/tenant-registrations/{registration_id}", "get"): read,
        ("/api/v1/tenant-registrations/{registration_id}", "patch"): write,
        ("/api/v1/tenant-registrations/{registration_id}", "delete"): write,
        ("/api/v1/tenant-registrations/{registration_id}/activate", "put"): write,
        ("/api/v1/tenant-registrations/{registration_id}/deactivate", "put"): write,
        ("/api/v1/tenants", "get"): read,
        ("/api/v1/tenants", "post"): write,
        ("/api/v1/tenants/{tenant_id}", "get"): read,
        ("/api/v1/tenants/{tenant_id}", "put"): write,
        ("/api/v1/tenants/{tenant_id}", "delete"): write,
    }
    for (path, method), security in expected.items():
        assert paths[path][method]["security"] == security, (path, method)
    for public in ("/api/v1/tenant-config", "/api/v1/tenant-config/{tenant_name}"):
        assert paths[public]["get"].get("security", []) in ([], [{}]), public
