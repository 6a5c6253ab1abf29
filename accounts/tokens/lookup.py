"""Looking presented bearer tokens up: one hand-written query by checksum for any number of
tokens (it runs on every API request), the tenant a token is limited to, and the batched check
metering's group commit uses."""

import functools
import hashlib
import uuid
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from oauth2_provider.models import get_access_token_model, get_application_model
from oauth2_provider.settings import oauth2_settings
from oauthlib.common import Request as OAuthlibRequest

from sbt_site.db import execute_prepared, in_list, model_columns


@functools.cache
def _token_lookup() -> tuple[str, list]:
    """DOT's ``AccessToken.objects.select_related("application", "user")`` lookup by checksum,
    written once (see sbt_site/db.py): it runs on every API request. Any number of checksums,
    one prepared statement."""
    token, application, user = (
        model_columns(get_access_token_model(), "t"),
        model_columns(get_application_model(), "a"),
        model_columns(get_user_model(), "u"),
    )
    quote = connection.ops.quote_name
    table = {part.alias: quote(part.model._meta.db_table) for part in (token, application, user)}
    pk = {part.alias: quote(part.model._meta.pk.column) for part in (token, application, user)}
    sql = (
        f"SELECT {token.sql}, {application.sql}, {user.sql} FROM {table['t']} t"  # noqa: S608 (names from the models)
        f" LEFT JOIN {table['a']} a ON a.{pk['a']} = t.application_id"
        f" LEFT JOIN {table['u']} u ON u.{pk['u']} = t.user_id"
        " WHERE {}"
    )
    return sql, [token, application, user]


def access_tokens_load(raw_tokens) -> dict:
    """{raw token: the stored access token with its application and user, as DOT loads it} for
    those of ``raw_tokens`` that are stored, in one query."""
    sql, parts = _token_lookup()
    by_checksum = {hashlib.sha256(raw.encode("utf-8")).hexdigest(): raw for raw in raw_tokens}
    if not by_checksum:
        return {}
    condition, params = in_list("t.token_checksum", list(by_checksum))
    found = {}
    for row in execute_prepared(sql.format(condition), params):
        instances, offset = [], 0
        for part in parts:
            instances.append(part.load(row[offset : offset + len(part)]))
            offset += len(part)
        token, application, user = instances
        # what select_related caches: token.application and token.user cost no further query
        token._state.fields_cache["application"] = application
        token._state.fields_cache["user"] = user
        found[by_checksum[token.token_checksum]] = token
    return found


def access_token_load(raw_token: str):
    """The stored access token for ``raw_token`` with its application and user, or None."""
    return access_tokens_load([raw_token]).get(raw_token)


def token_tenant_id(token) -> uuid.UUID | None:
    """The tenant an access token is limited to, or None: its OAuth client's tenant (a
    tenant-bound client), else the tenant of the user it was issued to."""
    if token.application is not None and token.application.tenant_id is not None:
        return token.application.tenant_id
    return token.user.tenant_id if token.user is not None else None


@dataclass(frozen=True)
class BearerCheck:
    """A presented bearer token, to be checked as the API's authentication and the route's
    scope check would: the request's URI and method (what the validator reads of a request) and
    the scope the route needs."""

    token: str
    uri: str
    method: str
    scope: str


def bearer_checks(checks: list[BearerCheck]) -> list:
    """Per check, the access token when it passes (the validator's checks, then the scope), or
    None; every token is looked up in one query. For callers that authenticate many requests
    at once (metering's group commit); one request is checked by BearerTokenAuthentication."""
    loaded = access_tokens_load({check.token for check in checks})
    passed = {}
    for check in dict.fromkeys(checks):  # the requests of a group mostly present one token
        validator = oauth2_settings.OAUTH2_VALIDATOR_CLASS()
        validator.preloaded_tokens = loaded
        request = OAuthlibRequest(check.uri, http_method=check.method)
        valid = validator.validate_bearer_token(check.token, [], request)
        passed[check] = request.access_token if valid and request.access_token.allow_scopes([check.scope]) else None
    return [passed[check] for check in checks]
