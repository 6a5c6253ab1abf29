"""Looking presented bearer tokens up: one hand-written query by checksum for any number of
tokens (it runs on every API request), the tenant a token is limited to, and the batched check
metering's group commit uses."""

import functools
import hashlib
import uuid
from dataclasses import dataclass, replace

from django.contrib.auth import get_user_model
from django.db import connection
from oauth2_provider.models import get_access_token_model, get_application_model
from oauth2_provider.settings import oauth2_settings
from oauthlib.common import Request as OAuthlibRequest

from sbt_site.db import ModelColumns, execute_prepared, in_list, model_columns
from tenants.models import Tenant

# What the validator reads of a token's tenants (its client's, its user's): loaded with the
# token as ``.only("active")`` would, so checking that both are active costs no query.
_TENANT_FIELDS = ("id", "active")


@functools.cache
def _token_lookup() -> tuple[str, list]:
    """DOT's ``AccessToken.objects.select_related("application", "user")`` lookup by checksum,
    written once (see sbt_site/db.py): it runs on every API request. Any number of checksums,
    one prepared statement. The tenants of the client and of the user come along (their id
    and ``active`` only), so an inactive tenant's tokens are refused without a second query."""
    token, application, user = (
        model_columns(get_access_token_model(), "t"),
        model_columns(get_application_model(), "a"),
        model_columns(get_user_model(), "u"),
    )
    quote = connection.ops.quote_name
    table = {part.alias: quote(part.model._meta.db_table) for part in (token, application, user)}
    pk = {part.alias: quote(part.model._meta.pk.column) for part in (token, application, user)}
    tenant_table, tenant_pk = quote(Tenant._meta.db_table), quote(Tenant._meta.pk.column)
    application_tenant, user_tenant = _tenant_columns("ct"), _tenant_columns("ut")
    sql = (
        f"SELECT {token.sql}, {application.sql}, {user.sql},"  # noqa: S608 (names from the models)
        f" {application_tenant.sql}, {user_tenant.sql} FROM {table['t']} t"
        f" LEFT JOIN {table['a']} a ON a.{pk['a']} = t.application_id"
        f" LEFT JOIN {table['u']} u ON u.{pk['u']} = t.user_id"
        f" LEFT JOIN {tenant_table} ct ON ct.{tenant_pk} = a.tenant_id"
        f" LEFT JOIN {tenant_table} ut ON ut.{tenant_pk} = u.tenant_id"
        " WHERE {}"
    )
    return sql, [token, application, user, application_tenant, user_tenant]


def _tenant_columns(alias: str) -> ModelColumns:
    columns = model_columns(Tenant, alias)
    return replace(columns, fields=tuple(field for field in columns.fields if field[0] in _TENANT_FIELDS))


def _row_slices(row, parts) -> list:
    """``row`` cut into each part's columns."""
    slices, offset = [], 0
    for part in parts:
        slices.append(row[offset : offset + len(part)])
        offset += len(part)
    return slices


def _tenant_load(columns: ModelColumns, values) -> Tenant | None:
    """A tenant with only _TENANT_FIELDS loaded (the others deferred), or None for no tenant."""
    values = list(values)
    for position, (_, column, converters) in enumerate(columns.fields):
        for converter in converters:
            values[position] = converter(values[position], column, connection)
    row = dict(zip((name for name, _, _ in columns.fields), values, strict=True))
    if row["id"] is None:
        return None
    return Tenant.from_db(connection.alias, list(_TENANT_FIELDS), [row[name] for name in _TENANT_FIELDS])


def access_tokens_load(raw_tokens) -> dict:
    """{raw token: the stored access token with its application and user, as DOT loads it} for
    those of ``raw_tokens`` that are stored, in one query."""
    sql, parts = _token_lookup()
    by_checksum = {hashlib.sha256(raw.encode("utf-8")).hexdigest(): raw for raw in raw_tokens}
    if not by_checksum:
        return {}
    condition, params = in_list("t.token_checksum", list(by_checksum))
    found = {}
    token_part, application_part, user_part, application_tenant_part, user_tenant_part = parts
    for row in execute_prepared(sql.format(condition), params):
        values = _row_slices(row, parts)
        token, application, user = (
            token_part.load(values[0]),
            application_part.load(values[1]),
            user_part.load(values[2]),
        )
        # what select_related caches: token.application and token.user cost no further query
        token._state.fields_cache["application"] = application
        token._state.fields_cache["user"] = user
        if application is not None and application.tenant_id is not None:
            application._state.fields_cache["tenant"] = _tenant_load(application_tenant_part, values[3])
        if user is not None and user.tenant_id is not None:
            user._state.fields_cache["tenant"] = _tenant_load(user_tenant_part, values[4])
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
        try:
            request = OAuthlibRequest(check.uri, http_method=check.method)
        except ValueError:  # a query string oauthlib cannot decode: BearerTokenAuthentication's 400
            passed[check] = None
            continue
        valid = validator.validate_bearer_token(check.token, [], request)
        passed[check] = request.access_token if valid and request.access_token.allow_scopes([check.scope]) else None
    return [passed[check] for check in checks]
