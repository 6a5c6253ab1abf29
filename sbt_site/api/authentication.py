"""Bearer-token authentication for the API."""

from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from oauth2_provider.utils import parse_bearer_token


class BearerTokenAuthentication(OAuth2Authentication):
    """OAuth2 bearer tokens, from the ``Authorization`` header only.

    oauthlib also accepts ``access_token`` in the query string or a form body; RFC 9700 §4.3.2
    says not to (tokens in URLs end up in logs and referrers), so such a request is treated as
    carrying no token at all.
    """

    def authenticate(self, request):
        if "access_token" in request.query_params:
            return None
        if parse_bearer_token(request.META.get("HTTP_AUTHORIZATION")) is None:
            return None  # without the header oauthlib would look for the token in the body
        return super().authenticate(request)
