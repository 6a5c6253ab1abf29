"""The views of the authorization server under /o/ that differ from django-oauth-toolkit's own
(accounts/oauth_urls.py mounts them)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views as dot_views
from oauth2_provider.exceptions import OAuthToolkitError
from oauthlib import oauth2

from accounts import introspection, lockout
from accounts.models import OAuthApplication
from accounts.scopes import scopes_for_user
from sbt_site.metrics import AUTH_FAILURES


class LoginView(auth_views.LoginView):
    """The login page of the authorization-code flow: the admin's look, open to every enabled
    user (the admin's own login accepts staff only). django-axes locks it out as it does the
    admin's login."""

    template_name = "admin/login.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(admin.site.each_context(self.request))
        context.update(title="Log in", app_path=self.request.get_full_path())
        return context


class AuthorizationView(dot_views.AuthorizationView):
    login_url = reverse_lazy("oauth2_provider:login")

    def validate_authorization_request(self, request):
        """The requested (or default) scopes, narrowed to what the user's role allows.

        RFC 6749 §3.3 lets the server grant less than was asked; the token response then names
        the scopes granted. Narrowing here, before the consent screen, makes the screen, the code,
        the token response and the JWT agree. Nothing left is ``invalid_scope``.
        """
        scopes, credentials = super().validate_authorization_request(request)
        if request.user.is_authenticated:
            scopes = scopes_for_user(scopes, request.user)
            if not scopes:
                error = oauth2.InvalidScopeError(
                    description="None of the requested scopes is allowed for this user's role",
                    state=credentials.get("state"),
                )
                raise OAuthToolkitError(error=error, redirect_uri=credentials["redirect_uri"])
        return scopes, credentials


class ClientEndpointMixin:
    """What the endpoints where OAuth clients authenticate add to django-oauth-toolkit's.

    - Lockout (accounts/lockout.py): a locked-out client id or address is answered 429 before
      DOT runs, so its secret is not hashed (PBKDF2, the CPU an attacker would otherwise spend
      for free). Every other answer is the endpoint's own; a 401 (RFC 6749's ``invalid_client``,
      the only 401 these endpoints give) counts as a failure.
    - A NUL character in a parameter is ``invalid_request``: no client id, code or token has
      one, and PostgreSQL refuses it in a query (DOT would answer 500).
    """

    def dispatch(self, request, *args, **kwargs):
        request.oauth_client_endpoint = True  # lockout_response answers in OAuth's JSON shape
        client_id = lockout.oauth_client_id(request)
        if "\x00" in client_id or any("\x00" in value for _, values in request.POST.lists() for value in values):
            return _invalid_request("A parameter holds a NUL character.")
        name = lockout.oauth_client_name(client_id)
        if lockout.oauth_client_locked(request, name):
            return lockout.lockout_response(request)
        response = self.answer(request, *args, **kwargs)
        if response.status_code == 401:
            lockout.oauth_client_failure_record(request, name)
            registered = OAuthApplication.objects.filter(client_id=client_id).exists()
            AUTH_FAILURES.labels("token", client_id if registered else "unknown").inc()
        return response

    def answer(self, request, *args, **kwargs):
        """The endpoint's own answer."""
        return super().dispatch(request, *args, **kwargs)


def _invalid_request(description: str) -> JsonResponse:
    response = JsonResponse({"error": "invalid_request", "error_description": description}, status=400)
    response["Cache-Control"] = "no-store"
    return response


# csrf_exempt again, as DOT's own views have it: a client endpoint, no browser form (overriding
# dispatch drops the decorator DOT put on its own).
@method_decorator(csrf_exempt, name="dispatch")
class TokenView(ClientEndpointMixin, dot_views.TokenView):
    pass


@method_decorator(csrf_exempt, name="dispatch")
class RevokeTokenView(ClientEndpointMixin, dot_views.RevokeTokenView):
    pass


@method_decorator(csrf_exempt, name="dispatch")
class IntrospectTokenView(ClientEndpointMixin, introspection.IntrospectTokenView):
    """RFC 7662 introspection: who may ask about which tokens is accounts/introspection.py's
    policy; a failed client authentication (401 ``invalid_client``) counts towards the lockout."""
