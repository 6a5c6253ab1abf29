"""RFC 7662 token introspection at /o/introspect/: who may ask, and about which tokens.

django-oauth-toolkit's view answers any authenticated client (or any bearer of a token with the
``introspection`` scope) about any token, and reads the token from ``GET ?token=`` too, which
puts tokens in access logs. RFC 7662 §4 leaves the policy to the server and asks it to protect
the endpoint; this one's:

- POST only (RFC 7662 §2.1); GET is 405.
- The caller authenticates as a confidential client (HTTP Basic, or ``client_id`` and
  ``client_secret`` in the body), else 401 ``invalid_client``. A bearer token is not a credential
  here, and a public client (no secret) cannot introspect.
- A client learns about its own tokens; a client registered with the ``introspection`` scope
  (INTROSPECTION_SCOPE: a resource server) about every token. Asking about another client's
  token otherwise answers ``{"active": false}``, as for an unknown token (RFC 7662 §2.2), so
  the answer does not tell whether the token exists.
"""

import calendar

from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauth2_provider.settings import oauth2_settings
from oauthlib.common import Request as OAuthlibRequest
from oauthlib.common import urlencode

from accounts.scopes import INTROSPECTION_SCOPE
from accounts.tokens import access_token_load


def _json(data: dict, status: int = 200) -> JsonResponse:
    response = JsonResponse(data, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _authenticated_client(request):
    """The OAuth client the request authenticates as with its credentials, or None."""
    core = get_oauthlib_core()
    oauth_request = OAuthlibRequest(
        request.build_absolute_uri(request.path),
        http_method="POST",
        body=urlencode(core.extract_body(request)),
        headers=core.extract_headers(request),
    )
    validator = oauth2_settings.OAUTH2_VALIDATOR_CLASS()
    return oauth_request.client if validator.authenticate_client(oauth_request) else None


def _token_is_live(token) -> bool:
    """What the API's bearer check accepts of a token, its audience aside (that depends on the
    route it is presented to): unexpired, of a usable client, of an enabled user of an active
    tenant."""
    if not token.is_valid():
        return False
    if token.application is not None and not token.application.is_usable(None):
        return False
    return token.user is None or (token.user.is_active and token.user.tenant_active)


@method_decorator(csrf_exempt, name="dispatch")  # as DOT's own: a client endpoint, no browser form
class IntrospectTokenView(View):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        client = _authenticated_client(request)
        if client is None:
            refused = _json({"error": "invalid_client"}, status=401)
            refused["WWW-Authenticate"] = 'Basic realm="introspect"'
            return refused
        raw_token = request.POST.get("token")
        if not raw_token:
            return _json({"error": "invalid_request", "error_description": "Token parameter is missing."}, 400)
        token = access_token_load(raw_token)
        if token is None or not _token_is_live(token):
            return _json({"active": False})
        own = token.application is not None and token.application.pk == client.pk
        if not own and INTROSPECTION_SCOPE not in client.scope_list:
            return _json({"active": False})
        data = {"active": True, "scope": token.scope, "exp": int(calendar.timegm(token.expires.timetuple()))}
        if token.application is not None:
            data["client_id"] = token.application.client_id
        if token.user is not None:
            data["username"] = token.user.get_username()
        if token.resource:
            data["aud"] = token.resource
        return _json(data)
