"""The error envelope of CONTRACT.md "Basics", for every kind of error."""

import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured

pytestmark = [pytest.mark.django_db, pytest.mark.urls("sbt_site.tests.probe_urls")]


def assert_envelope(response, status: int, message: str | None = None, code: str | None = None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["statusCode"] == status
    assert isinstance(body["message"], str) and body["message"]
    if message is not None:
        assert body["message"] == message
    if code is not None:
        assert body["code"] == code
    return body


def test_no_token_is_401_unauthorized(api):
    response = api(scopes=None).get("/api/v1/probe")
    assert_envelope(response, 401, "Unauthorized", "unauthorized")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_unknown_token_is_401(api):
    client = api(scopes=None)
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-real-token")
    assert_envelope(client.get("/api/v1/probe"), 401, "Unauthorized")


def test_expired_token_is_401(make_token):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(scopes='tenant/tenant_read', expires_in=-10)}")
    assert_envelope(client.get("/api/v1/probe"), 401, "Unauthorized")


def test_token_in_query_string_is_not_accepted(make_token):
    from rest_framework.test import APIClient

    token = make_token(scopes="tenant/tenant_read")
    assert_envelope(APIClient().get(f"/api/v1/probe?access_token={token}"), 401, "Unauthorized")


def test_token_without_the_scope_is_403_forbidden(api):
    assert_envelope(api(scopes="user/user_read").get("/api/v1/probe"), 403, "Forbidden", "forbidden")


def test_read_scope_does_not_allow_writes(api):
    response = api(scopes="tenant/tenant_read").post("/api/v1/probe", {"name": "x", "count": 1}, format="json")
    assert_envelope(response, 403, "Forbidden")


def test_unknown_route_is_404_envelope(api):
    assert_envelope(api().get("/api/v1/no-such-route"), 404, code="not_found")


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_route_is_404_envelope_even_with_debug_on(api, settings, method):
    settings.DEBUG = True  # Django would answer with its HTML debug page
    response = getattr(api(), method)("/api/v1/tenant-registrationz/x")
    assert response["Content-Type"] == "application/json"
    assert_envelope(response, 404, "Not found", "not_found")


def test_service_not_found_keeps_its_message(api):
    tenant_id = uuid.uuid4()
    assert_envelope(api().get(f"/api/v1/probe/{tenant_id}"), 404, f"Tenant not found for id {tenant_id}", "not_found")


def test_service_conflict_is_409_with_its_code(api):
    response = api().delete(f"/api/v1/probe/{uuid.uuid4()}")
    assert_envelope(response, 409, "Tenant is already offboarded", "already_offboarded")


def test_invalid_uuid_in_path_is_404(api):
    assert_envelope(api().get("/api/v1/probe/not-a-uuid"), 404)


def test_method_not_allowed_is_405(api):
    response = api().put("/api/v1/probe", {}, format="json")
    assert_envelope(response, 405, 'Method "PUT" not allowed.', "method_not_allowed")


def test_unsupported_media_type_is_415(api):
    response = api().post("/api/v1/probe", "name=x&count=1", content_type="application/x-www-form-urlencoded")
    assert_envelope(response, 415, code="unsupported_media_type")


def test_malformed_json_is_400(api):
    response = api().post("/api/v1/probe", '{"name": "x", ', content_type="application/json")
    body = assert_envelope(response, 400, code="parse_error")
    assert body["message"].startswith("Malformed JSON")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_constants_are_refused(api, constant):
    response = api().post("/api/v1/probe", f'{{"name": "x", "count": {constant}}}', content_type="application/json")
    assert_envelope(response, 400, code="parse_error")


def test_body_over_the_limit_is_413(api, settings):
    body = '{"name": "' + "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + '", "count": 1}'
    response = api().post("/api/v1/probe", body, content_type="application/json")
    assert_envelope(response, 413, code="request_too_large")


@pytest.mark.parametrize("path", ["/o/token/", "/o/revoke_token/", "/o/introspect/"])
def test_a_form_over_the_limit_to_the_oauth_endpoints_is_the_413_envelope(path, settings):
    # Django reads these bodies itself (request.POST), outside DRF's parser: its 400 page was the answer.
    from django.test import Client

    body = "grant_type=client_credentials&padding=" + "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = Client().post(path, body, content_type="application/x-www-form-urlencoded")
    assert response["Content-Type"] == "application/json"
    assert_envelope(response, 413, code="request_too_large")


def test_too_many_form_fields_to_the_token_endpoint_is_a_400_envelope(settings):
    from django.test import Client

    body = "&".join(f"f{number}=x" for number in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = Client().post("/o/token/", body, content_type="application/x-www-form-urlencoded")
    assert_envelope(response, 400, code="bad_request")


@pytest.mark.parametrize("depth", [65, 900, 100_000])
def test_json_nested_deeper_than_the_limit_is_400(api, depth):
    # 900 levels parse, then overflowed the stack when the value was encoded to be stored.
    body = '{"name": "x", "count": 1, "extra": ' + "[" * depth + "]" * depth + "}"
    response = api().post("/api/v1/probe", body, content_type="application/json")
    assert_envelope(response, 400, "Malformed JSON: nested too deeply", "parse_error")


def test_json_nested_up_to_the_limit_is_parsed(api):
    body = '{"name": "x", "count": 1, "extra": ' + "[" * 63 + "]" * 63 + "}"
    assert api().post("/api/v1/probe", body, content_type="application/json").status_code == 201


def test_validation_error_is_422_with_detail(api):
    response = api().post("/api/v1/probe", {"name": "y" * 30, "count": -1}, format="json")
    body = assert_envelope(response, 422, code="validation_error")
    locations = sorted(tuple(item["loc"]) for item in body["detail"])
    assert locations == [("body", "count"), ("body", "name")]
    assert all(item["msg"] and item["type"] for item in body["detail"])


def test_validation_error_for_a_non_object_body(api):
    response = api().post("/api/v1/probe", "[1, 2]", content_type="application/json")
    body = assert_envelope(response, 422, code="validation_error")
    assert body["detail"][0]["loc"] == ["body"]


def test_success_uses_the_data_envelope(api):
    response = api().post("/api/v1/probe", {"name": "ok", "count": 2}, format="json")
    assert response.status_code == 201
    assert response.json() == {"data": {"name": "ok", "count": 2}}


def test_a_view_without_declared_scopes_is_never_served(api):
    with pytest.raises(ImproperlyConfigured, match="declares no operation"):
        api().get("/api/v1/undeclared")


def test_a_host_not_served_is_a_400_envelope_that_does_not_name_the_setting(api):
    response = api().get("/api/v1/probe", HTTP_HOST="evil.example.com")
    body = assert_envelope(response, 400, code="bad_request")
    assert "ALLOWED_HOSTS" not in body["message"] and "evil.example.com" not in body["message"]
