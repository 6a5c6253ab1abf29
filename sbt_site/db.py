"""Model instances from hand-written SQL, for the few reads on every API request.

Building a query with the ORM costs more CPU than PostgreSQL spends running it (about 0.5 to
1.5 ms per query on our 2-core reference machine, against 0.1 to 0.3 ms to run it), and the
token lookup and the ingestion checks run on every request. Those few reads write their SQL
once (column lists from the models, so a migration cannot leave them behind) and turn rows into
instances with ``Model.from_db`` and the same converters the ORM applies, on every database.
"""

from dataclasses import dataclass

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


def execute_prepared(sql: str, params, *, fetch: str = "all"):
    """Run ``sql`` and return its rows (``fetch="all"``) or first row (``"one"``).

    On PostgreSQL the statement is prepared server-side once per connection and then only
    executed (a plain psycopg cursor on Django's connection, in its transaction: Django's own
    cursors bind client-side and never prepare); its plan is generic (``plan_cache_mode`` in
    settings), so the statement is not planned again on each call. Elsewhere it is an ordinary
    query. Bypasses Django's query logging: keep it for the few statements of the hot path.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() if fetch == "one" else cursor.fetchall()
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone() if fetch == "one" else cursor.fetchall()


def in_list(column: str, values: list) -> tuple[str, list]:
    """``column`` is one of ``values``, as (SQL condition, params): one array parameter on
    PostgreSQL (one prepared statement whatever the count), a list of placeholders elsewhere."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)
