"""Authorization codes: stored as digests, and each exchange recorded so that a replayed code
revokes the tokens it produced (RFC 6749 §4.1.2).

django-oauth-toolkit stores a code in clear in its Grant table until it is exchanged (at most
AUTHORIZATION_CODE_EXPIRE_SECONDS, 60 s); here the validator stores and looks it up by its
SHA-256 instead, as DOT does for tokens, so a database read leaks no usable code. A code is
random (oauthlib's 30 characters), so an unsalted digest cannot be reversed.
"""

import hashlib
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.settings import oauth2_settings

from accounts.models import AuthorizationCodeExchange


def code_digest(code: str) -> str:
    """What the Grant table holds for ``code``, and what lookups compare with."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def code_exchange_record(*, digest: str, application, user, access_token, token_family) -> None:
    """Remember that the code ``digest`` was exchanged for ``access_token`` and the refresh
    tokens of ``token_family``, for as long as that family may be refreshed."""
    AuthorizationCodeExchange.objects.create(
        code_digest=digest,
        application=application,
        user=user,
        access_token=access_token,
        token_family=token_family,
        expires=timezone.now() + timedelta(seconds=oauth2_settings.REFRESH_TOKEN_EXPIRE_SECONDS),
    )


def code_replay_revoke(*, digest: str, application) -> bool:
    """If the code ``digest`` of ``application`` was already exchanged, revoke every token that
    exchange produced and return True."""
    exchange = AuthorizationCodeExchange.objects.filter(code_digest=digest, application=application).first()
    if exchange is None:
        return False
    code_tokens_revoke(access_token_id=exchange.access_token_id, token_family=exchange.token_family)
    return True


def code_tokens_revoke(*, access_token_id: int | None, token_family) -> None:
    """Revoke what one code exchange produced: its access token, its refresh token family (every
    rotation carries the family) and the access tokens refreshed from that family. Revoked
    refresh tokens stay as tombstones, as elsewhere, so presenting one later is still a replay."""
    refresh_tokens = get_refresh_token_model().objects.none()
    if token_family is not None:  # filter(token_family=None) would mean every unfamilied token
        refresh_tokens = get_refresh_token_model().objects.filter(token_family=token_family)
    live = Q(pk=access_token_id) | Q(source_refresh_token__in=refresh_tokens)
    live |= Q(pk__in=refresh_tokens.exclude(access_token=None).values("access_token"))
    doomed = list(get_access_token_model().objects.filter(live).values_list("pk", flat=True))
    now = timezone.now()
    refresh_tokens.filter(revoked__isnull=True).update(revoked=now, updated=now, access_token=None)
    get_access_token_model().objects.filter(pk__in=doomed).delete()


def code_exchanges_clear_expired() -> None:
    """Forget exchanges whose tokens are past their lifetime anyway."""
    AuthorizationCodeExchange.objects.filter(expires__lt=timezone.now()).delete()
