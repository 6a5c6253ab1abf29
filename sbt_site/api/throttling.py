"""The API's rate limit per client: ``SBT["API_RATE_LIMIT"]`` (docs/operations.md "Throttling
and lockout"), DRF's default throttle, and applied by POST /usage's fast path with the same
counters (``tokens_throttled``)."""

from rest_framework.throttling import SimpleRateThrottle

from sbt_site.conf import sbt_settings
from sbt_site.ratelimits import windows_charge


class ClientRateThrottle(SimpleRateThrottle):
    """At most ``SBT["API_RATE_LIMIT"]`` requests (DRF's rate syntax, ``6000/min``) per OAuth
    client in each window; over it, DRF answers 429 with ``Retry-After``.

    Counted per client of the token, and for a token issued to a user per client and user: the
    users of one client (the admin SPA) must not use up each other's allowance, nor one tenant's
    users another's. Requests without a token are not counted: DRF answers them 401 before
    throttles run (failed logins and client secrets are django-axes'), and the public routes
    (AllowAny) carry none. DRF's rate parsing and cache key format; the counting is
    ``sbt_site.ratelimits`` (which says why not DRF's)."""

    scope = "client"

    def get_rate(self) -> str | None:
        return sbt_settings.API_RATE_LIMIT or None

    def get_cache_key(self, request, view) -> str | None:
        return self.token_key(request.auth)

    def token_key(self, token) -> str | None:
        """The counter of the requests authenticated by ``token`` (an access token), or None."""
        application_id = getattr(token, "application_id", None)
        if application_id is None:
            return None
        user_id = getattr(token, "user_id", None)
        ident = application_id if user_id is None else f"{application_id}.{user_id}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view) -> bool:
        key = self.get_cache_key(request, view) if self.rate is not None else None
        self.retry_after = None if key is None else self.charge([key])[0]
        return self.retry_after is None

    def charge(self, keys: list[str | None]) -> list[int | None]:
        """Count one request per key (None: not counted), in order: per request None
        (allowed) or the seconds until it would be."""
        requests = [{} if key is None else {key: 1} for key in keys]
        return windows_charge(requests, limit=self.num_requests, seconds=self.duration)

    def wait(self) -> int | None:
        return self.retry_after


def tokens_throttled(tokens: list) -> list[int | None]:
    """``ClientRateThrottle``'s decision for requests authenticated at once, one per access
    token (POST /usage's fast path, a group commit's requests): per request None, or the
    ``Retry-After`` of the 429 DRF would answer. One cache increment per client of the group."""
    throttle = ClientRateThrottle()
    if throttle.rate is None:
        return [None] * len(tokens)
    return throttle.charge([throttle.token_key(token) for token in tokens])
