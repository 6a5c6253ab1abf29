"""limit / next_token pagination (CONTRACT.md "Basics")."""

import pytest
from django.core import signing

from tenants.models import Tenant

pytestmark = [pytest.mark.django_db, pytest.mark.urls("sbt_site.tests.probe_urls")]


@pytest.fixture
def tenants(db):
    return [Tenant.objects.create(name=f"tenant-{index:02d}") for index in range(25)]


def names(response):
    return [item["tenantName"] for item in response.json()["data"]]


def test_pages_visit_every_item_once_in_a_stable_order(api, tenants):
    client = api(scopes="tenant/tenant_read")
    seen, token, pages = [], "", 0
    while True:
        response = client.get("/api/v1/probe", {"limit": 10, "next_token": token})
        assert response.status_code == 200
        seen += names(response)
        pages += 1
        token = response.json().get("next_token")
        if not token:
            break
    assert pages == 3
    assert seen == [tenant.name for tenant in tenants]


def test_default_page_size_is_10_and_last_page_has_no_next_token(api, tenants):
    client = api(scopes="tenant/tenant_read")
    first = client.get("/api/v1/probe")
    assert len(first.json()["data"]) == 10 and "next_token" in first.json()
    exact = client.get("/api/v1/probe", {"limit": 25})
    assert len(exact.json()["data"]) == 25
    assert "next_token" not in exact.json()


def test_items_added_while_paging_are_neither_skipped_nor_repeated(api, tenants):
    client = api(scopes="tenant/tenant_read")
    first = client.get("/api/v1/probe", {"limit": 5})
    Tenant.objects.create(name="tenant-late")
    rest, token = [], first.json()["next_token"]
    while token:
        response = client.get("/api/v1/probe", {"limit": 5, "next_token": token})
        rest += names(response)
        token = response.json().get("next_token")
    everything = names(first) + rest
    assert len(everything) == len(set(everything)) == 26


def test_empty_list(api):
    response = api(scopes="tenant/tenant_read").get("/api/v1/probe")
    assert response.json() == {"data": []}


@pytest.mark.parametrize("limit", ["0", "-1", "101", "ten", "1.5"])
def test_bad_limit_is_422(api, tenants, limit):
    response = api(scopes="tenant/tenant_read").get("/api/v1/probe", {"limit": limit})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "limit"]


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "eyJhIjoxfQ:1abc:def",
        signing.dumps(["2020-01-01T00:00:00+00:00"], salt="sbt.page.tenants.tenant", compress=True),
        signing.dumps(["not a date", "not a uuid"], salt="sbt.page.tenants.tenant", compress=True),
        signing.dumps({"not": "a list"}, salt="sbt.page.tenants.tenant", compress=True),
        signing.dumps(["2020-01-01T00:00:00+00:00", "x"], salt="sbt.page.other.model", compress=True),
    ],
)
def test_malformed_next_token_is_422(api, tenants, token):
    response = api(scopes="tenant/tenant_read").get("/api/v1/probe", {"next_token": token})
    assert response.status_code == 422, response.content
    assert response.json()["detail"][0]["loc"] == ["query", "next_token"]


def test_tampered_next_token_is_422(api, tenants):
    client = api(scopes="tenant/tenant_read")
    token = client.get("/api/v1/probe", {"limit": 2}).json()["next_token"]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get("/api/v1/probe", {"next_token": tampered}).status_code == 422
