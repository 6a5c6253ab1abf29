"""What every log line of one piece of work carries: its request id, tenant id and client id.

A request, a Celery task and a provisioning run each set the context when they start
(``bound(...)``); ``ContextFilter`` copies it onto every log record made meanwhile, so the
lines of one onboarding can be followed across the web process, the workers and the webhooks
it sends (``X-Request-ID``). The context lives in a ``ContextVar``: each thread (gunicorn's
``--threads``, the group commit's callers) has its own.

Only ids go in here, never a token, a secret or a request body: what is in the context is
written on every line.

``JsonFormatter`` writes one JSON object per line (LOG_FORMAT=json, docs/operations.md "Logs").
"""

import json
import logging
import os
import re
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime

FIELDS = ("request_id", "tenant_id", "client_id")
HEADER = "X-Request-ID"

# What a request id sent by a proxy or a client may look like (uuids, nginx's $request_id,
# AWS's trace ids): short, printable, no spaces or quotes that would break a log line or a header.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:=+/-]{8,128}")

_context: ContextVar[dict | None] = ContextVar("sbt_log_context", default=None)


def get() -> dict:
    """The current context: a dict with the FIELDS that are set (a copy)."""
    return dict(_context.get() or {})


def get_field(name: str) -> str | None:
    return (_context.get() or {}).get(name)


def set(**fields) -> None:  # get/set: the API other modules read best, though it shadows set()
    """Add or replace fields of the current context (None removes one); for what is learnt
    during the work, e.g. the client once its token is checked. Values are kept as text.
    Outside any work (no ``bound``/``push``) it does nothing: what it set would otherwise stay
    with the thread and be written on the lines of whatever the thread does next."""
    unknown = fields.keys() - FIELDS
    if unknown:
        raise TypeError(f"Unknown log context field(s): {', '.join(sorted(unknown))}")
    if _context.get() is None:
        return
    current = dict(_context.get())
    for name, value in fields.items():
        if value is None:
            current.pop(name, None)
        else:
            current[name] = str(value)
    _context.set(current)


def push(**fields) -> Token:
    """Start a fresh context (a request id generated unless one is given); ``pop`` with the
    returned token restores the one before. For work whose start and end are separate calls
    (Celery's signals); otherwise use ``bound``."""
    if fields.get("request_id") is None:
        fields["request_id"] = new_request_id()
    token = _context.set({})
    set(**fields)
    return token


def pop(token: Token) -> None:
    _context.reset(token)


@contextmanager
def bound(**fields):
    """A fresh context for one piece of work (a request, a task, a provisioning run), restored
    when it ends; a request id is generated unless one is given:

        with logcontext.bound(tenant_id=tenant.pk):
            ...  # every log line here carries the request id and the tenant id
    """
    token = push(**fields)
    try:
        yield get()
    finally:
        pop(token)


def new_request_id() -> str:
    """32 random hex digits (a uuid4's worth of randomness, without building the UUID)."""
    return os.urandom(16).hex()


def accepted_request_id(value: str | None) -> str | None:
    """``value`` if it is a well-formed request id (REQUEST_ID_PATTERN), else None."""
    if value and REQUEST_ID_PATTERN.fullmatch(value):
        return value
    return None


class ContextFilter(logging.Filter):
    """Copies the context onto each record (``record.request_id`` etc., None when unset), for
    formatters to use; attached to the handlers in settings.LOGGING."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get() or {}
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, context.get(name))
        return True


# The attributes every LogRecord has: anything else was passed with ``extra=`` and is written too.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", *FIELDS}


_PLAIN = (str, int, float, bool, type(None))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, pid, the context's
    fields that are set, the ``extra=`` fields that are plain values, and the exception's
    traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        for name, value in record.__dict__.items():
            # plain values only: an object's text can hold what must not be logged (Django's
            # django.request passes the request, whose repr has the query string: a token there)
            if name not in _RECORD_ATTRIBUTES and not name.startswith("_") and isinstance(value, _PLAIN):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)
