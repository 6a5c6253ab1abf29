"""Bearer-token authentication for the API."""

from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.utils import parse_bearer_token
from oauthlib.common import Request as OAuthlibRequest
from rest_framework.exceptions import APIException

from accounts.oauth_errors import malformed_query
from accounts.tokens.lookup import token_tenant_id
from sbt_site import logcontext
from sbt_site.metrics import AUTH_FAILURES


class MalformedQuery(APIException):
    status_code = 400
    default_detail = "Malformed percent-encoding in the query string."
    default_code = "bad_request"


class BearerTokenAuthentication(OAuth2Authentication):
    """OAuth2 bearer tokens, from the ``Authorization`` header only.

    oauthlib also accepts ``access_token`` in the query string or a form body; RFC 9700 §4.3.2
    says not to (tokens in URLs end up in logs and referrers), so such a request is treated as
    carrying no token at all.

    The token is checked by the configured OAuth2 validator (``validate_bearer_token``: lookup by
    checksum, expiry, resource audience, usable application, enabled user of an active tenant),
    exactly as DOT's ``OAuth2Authentication`` has it checked. What is skipped is the machinery
    around that call: DOT builds a whole oauthlib server (every grant type) and re-encodes the
    request's body and headers on every API request, which cost more CPU than the check itself.

    A query string whose percent-encoding is malformed (``%zz``) is a 400: RFC 3986 does not
    allow it, and oauthlib, which DOT hands the whole URI, would raise on it.
    """

    def authenticate(self, request):
        if request is None:
            return None
        if malformed_query(request.META.get("QUERY_STRING", "")):
            raise MalformedQuery()
        if "access_token" in request.query_params:
            return None
        token = parse_bearer_token(request.META.get("HTTP_AUTHORIZATION"))
        if token is None:
            return None
        # What the validator reads of the request: the URI's path (the audience of resource-bound
        # tokens), not its query, which oauthlib would decode more strictly than Django does.
        core_request = OAuthlibRequest(request.build_absolute_uri(request.path), http_method=request.method)
        validator = oauth2_settings.OAUTH2_VALIDATOR_CLASS()
        if validator.validate_bearer_token(token, [], core_request):
            access_token = core_request.access_token
            logcontext.set(client_id=access_token.application.client_id, tenant_id=token_tenant_id(access_token))
            return core_request.user, access_token
        request.oauth2_error = getattr(core_request, "oauth2_error", {})
        # the client is unknown: a token that does not pass names none we could trust
        AUTH_FAILURES.labels("api", "unknown").inc()
        return None
