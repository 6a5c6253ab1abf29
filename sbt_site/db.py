"""Hand-written SQL for the few statements on every API request: model instances from rows,
and the project's one way to run a prepared statement.

Building a query with the ORM costs more CPU than PostgreSQL spends running it (about 0.5 to
1.5 ms per query on our 2-core reference machine, against 0.1 to 0.3 ms to run it), and the
token lookup and the ingestion checks run on every request. Those few reads write their SQL
once (column lists from the models, so a migration cannot leave them behind) and turn rows into
instances with ``Model.from_db`` and the same converters the ORM applies, on every database.

Prepared statements (``execute_prepared``; ``raw_cursor`` for what else the hot path needs from
psycopg, such as ``COPY``). On PostgreSQL a statement is prepared server-side once per
connection and afterwards only executed, with a generic plan (``plan_cache_mode`` in settings):
the ingestion statement used to be planned on every call, 0.5 ms each, more than running it for
a few events (docs/performance.md). Django's cursors bind client-side and never prepare, so this
path runs a psycopg cursor directly on Django's connection, in its transaction. What it
bypasses, and what it costs:

- Django's query log (``connection.queries`` under DEBUG) and execute wrappers
  (``connection.execute_wrapper``): ``assertNumQueries`` / ``django_assert_num_queries`` and
  debugging tools do not see these statements, so a test counting queries undercounts them.
- Django's parameter adaptation and placeholder parsing: parameters go to psycopg as they are
  (uuid, datetime, Decimal, str and lists of them adapt natively), and the SQL may use ``%s``
  placeholders only (no ``%(name)s``, no ``%%``), with no ``--`` or ``%s`` inside a string
  literal: it is compacted and its ``%s`` numbered ``$1, $2, ...`` once (cached), because
  psycopg re-parses a statement longer than 4 KB on every call.
- Preparing needs ``prepare_threshold`` in the connection's OPTIONS (settings, on unless
  ``DATABASE_PREPARED_STATEMENTS=false`` or ``DATABASE_TRANSACTION_POOLING=true``): Django's
  default (None) turns preparing off, and the statements then simply run unprepared. Each
  prepared statement holds memory in its server session (psycopg keeps at most 100 per
  connection, evicting the least recently used), and a transaction-pooling PgBouncer older than
  1.21 cannot carry them (docs/operations.md).

It keeps Django's error handling (``connection.wrap_database_errors``) and its health check: errors
are ``django.db``'s, a failure marks the connection for Django to check and replace when the
request ends, and a connection dropped while idle is replaced before the first statement (a
pooled one, by the pool). A dropped connection thus fails one request at most (answered 503,
sbt_site/api/exceptions.py). Keep it for the few statements a profile shows on every request.
"""

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import psycopg
from django.db import connection


@dataclass(frozen=True)
class ModelColumns:
    """The concrete columns of ``model`` under table alias ``alias``, in field order."""

    model: type
    alias: str
    fields: tuple  # ((attname, Col expression, converters), ...)

    @property
    def sql(self) -> str:
        """``alias."column", ...`` for a SELECT list."""
        quote = connection.ops.quote_name
        return ", ".join(f"{self.alias}.{quote(column.target.column)}" for _, column, _ in self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def load(self, values):
        """An instance from this model's slice of a row, or None when its primary key is NULL
        (the missing side of a LEFT JOIN)."""
        values = list(values)
        if values[self.model._meta.concrete_fields.index(self.model._meta.pk)] is None:
            return None
        for position, (_, column, converters) in enumerate(self.fields):
            for converter in converters:
                values[position] = converter(values[position], column, connection)
        return self.model.from_db(connection.alias, [name for name, _, _ in self.fields], values)


def model_columns(model, alias: str) -> ModelColumns:
    fields = []
    for field in model._meta.concrete_fields:
        column = field.get_col(alias)
        fields.append(
            (field.attname, column, connection.ops.get_db_converters(column) + field.get_db_converters(connection))
        )
    return ModelColumns(model=model, alias=alias, fields=tuple(fields))


def storable_text(text: str) -> bool:
    """Whether PostgreSQL can store ``text``. JSON allows a NUL character (``\\u0000``) and lone
    UTF-16 surrogates (``\\ud800``); text and jsonb columns refuse both, so input carrying them
    must be a 4xx, not a 500 at write time."""
    if text.isascii():  # the common case, without encoding a copy
        return "\x00" not in text
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def db_value(field, value):
    """``value`` as a query parameter for ``field`` (a UUID is text on SQLite, uuid on PostgreSQL)."""
    return field.get_db_prep_value(value, connection, prepared=False)


@lru_cache(maxsize=256)
def _native_placeholders(sql: str) -> str:
    """``sql`` without comments or runs of whitespace, its ``%s`` numbered as $1, $2, ..."""
    numbers = itertools.count(1)
    compact = " ".join(re.sub(r"--[^\n]*", "", sql).split())
    return re.sub("%s", lambda _: f"${next(numbers)}", compact)


@contextmanager
def raw_cursor() -> Iterator[psycopg.RawCursor]:
    """PostgreSQL only: a psycopg cursor on Django's connection, in its transaction, for what
    Django's cursors cannot do (``COPY``). It bypasses what ``execute_prepared`` bypasses."""
    # Django's cursors check a persistent connection once per request before its first query
    # (CONN_HEALTH_CHECKS); ensure_connection alone does not, and would keep using one that
    # PostgreSQL dropped while it was idle. A pooled connection was checked by the pool.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    # Django's error handling: psycopg errors become django.db's, and any but a data or
    # integrity error marks the connection, so Django checks it and discards it if broken
    # (at the end of the request) instead of handing a dead connection to the next one.
    with connection.wrap_database_errors, psycopg.RawCursor(connection.connection) as cursor:
        yield cursor


def execute_prepared(sql: str, params, *, fetch: str = "all"):
    """Run ``sql`` (``%s`` placeholders) and return its rows (``fetch="all"``) or first row
    (``"one"``).

    On PostgreSQL the statement is prepared server-side once per connection and then only
    executed, with a generic plan; elsewhere it is an ordinary query. See the module docstring
    for what this bypasses: keep it for the few statements of the hot path.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() if fetch == "one" else cursor.fetchall()
    with raw_cursor() as cursor:
        cursor.execute(_native_placeholders(sql), params, prepare=True)
        return cursor.fetchone() if fetch == "one" else cursor.fetchall()


def in_list(column: str, values: list) -> tuple[str, list]:
    """``column`` is one of ``values``, as (SQL condition, params): one array parameter on
    PostgreSQL (one prepared statement whatever the count), a list of placeholders elsewhere."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)
