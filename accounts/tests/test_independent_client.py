"""An outside client (authlib for the flows, PyJWT for verification) against the live server.

Nothing here uses our code to get or check a token: discovery, JWKS, token endpoint and login
page are reached over HTTP exactly as an application plane would.
"""

import jwt
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from accounts.tests.conftest import CALLBACK, PASSWORD, browser_session, http, tracked


def discover(server):
    auth_info = http.get(server.url + "/api/v1/auth-info").json()["data"]
    discovery = http.get(auth_info["wellKnownEndpointUrl"]).json()
    return auth_info, discovery


def verify_offline(access_token: str, auth_info: dict, discovery: dict) -> dict:
    signing_key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(access_token)
    return jwt.decode(
        access_token,
        signing_key.key,
        algorithms=["RS256"],
        audience=auth_info["jwtAudience"],
        issuer=discovery["issuer"],
        options={"require": ["iss", "aud", "sub", "exp", "iat", "jti"]},
    )


def test_client_credentials_token_verifies_against_the_discovered_jwks(auth_server, machine):
    client_id, secret = machine("user/user_read", tenant=None)
    auth_info, discovery = discover(auth_server)
    assert discovery["issuer"] == auth_info["jwtIssuer"] == auth_server.url + "/o"
    assert discovery["token_endpoint"] == auth_info["tokenEndpoint"]
    assert http.get(auth_server.url + "/.well-known/openid-configuration").json() == discovery

    session = OAuth2Session(client_id, secret, scope="user/user_read")
    tracked(session)
    token = session.fetch_token(discovery["token_endpoint"], grant_type="client_credentials")
    assert token["expires_in"] == 3600
    assert "refresh_token" not in token

    claims = verify_offline(token["access_token"], auth_info, discovery)
    assert claims["client_id"] == client_id
    assert claims["sub"] == client_id
    assert claims["scope"] == "user/user_read"
    assert claims["exp"] - claims["iat"] == 3600
    assert "tenantId" not in claims
    assert jwt.get_unverified_header(token["access_token"])["typ"] == "at+jwt"

    response = session.get(auth_server.url + "/api/v1/users")
    assert response.status_code == 200, response.text


def test_authorization_code_with_pkce_through_the_login_page(auth_server, person):
    user = person("carol", role="SystemAdmin")
    auth_info, discovery = discover(auth_server)
    assert auth_info["userClientId"] == auth_server.user_client_id
    assert discovery["code_challenge_methods_supported"] == ["S256"]

    session = OAuth2Session(
        auth_info["userClientId"],
        redirect_uri=CALLBACK,
        scope="user/user_read",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    tracked(session)
    verifier = generate_token(48)
    authorize_url, state = session.create_authorization_url(discovery["authorization_endpoint"], code_verifier=verifier)

    browser = browser_session()
    to_login = browser.get(authorize_url, allow_redirects=False)
    assert to_login.status_code == 302 and "/o/login/" in to_login.headers["Location"]
    login_page = browser.get(auth_server.url + to_login.headers["Location"])
    csrf = login_page.text.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    back = browser.post(
        login_page.url,
        data={"username": "carol", "password": PASSWORD, "csrfmiddlewaretoken": csrf},
        allow_redirects=False,
    )
    assert back.status_code == 302, back.text
    callback = browser.get(auth_server.url + back.headers["Location"], allow_redirects=False)
    assert callback.status_code == 302
    assert callback.headers["Location"].startswith(CALLBACK)
    assert f"state={state}" in callback.headers["Location"]
    assert "iss=" in callback.headers["Location"], "RFC 9207 iss in the authorization response"

    token = session.fetch_token(
        discovery["token_endpoint"], authorization_response=callback.headers["Location"], code_verifier=verifier
    )
    assert token["refresh_token"]
    claims = verify_offline(token["access_token"], auth_info, discovery)
    assert claims["sub"] == str(user.pk)
    assert claims["username"] == "carol"
    assert claims["client_id"] == auth_info["userClientId"]

    response = session.get(auth_server.url + "/api/v1/users/carol")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "CONFIRMED"


def test_a_tenant_bound_clients_token_carries_its_tenant(auth_server, machine):
    from tenants.tests.factories import TenantFactory

    tenant = TenantFactory(name="acme")
    client_id, secret = machine("user/user_read", tenant=tenant)
    auth_info, discovery = discover(auth_server)
    session = OAuth2Session(client_id, secret)
    tracked(session)
    token = session.fetch_token(discovery["token_endpoint"], grant_type="client_credentials")
    assert verify_offline(token["access_token"], auth_info, discovery)["tenantId"] == str(tenant.pk)
