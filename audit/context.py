"""Who is acting: the operator, API caller or command that the audit log names on each entry.

django-auditlog writes a ``LogEntry`` for every change of a registered model (a ``post_save``
receiver, inside the change's transaction). Its own middleware fixes the actor when the request
arrives, which is too early for the API: the bearer token is read later, by DRF, which then sets
``request.user`` and ``request.auth`` on the Django request. So the actor is kept here as "the
request (or command) being served" and read when an entry is saved (``entry_fill``), by which
time the caller is known: an operator, a user through a client, or an OAuth client alone.
"""

import contextlib
import getpass
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest

# The console's URL prefix: a request under it is the operator's, any other one an API call.
ADMIN_PREFIX = "/admin/"


@dataclass(frozen=True)
class Actor:
    """What an entry records about who acted. ``user`` is the account (operator or API user),
    ``label`` says who it was in words, including an OAuth client that acts without a user."""

    user: object | None
    label: str
    via: str


@dataclass(frozen=True)
class _RequestSource:
    request: HttpRequest

    def actor(self) -> Actor:
        request = self.request
        via = "admin" if request.path.startswith(ADMIN_PREFIX) else "api"
        user = getattr(request, "user", None)
        user = user if getattr(user, "is_authenticated", False) else None
        application = getattr(getattr(request, "auth", None), "application", None)
        if application is not None:
            client = f"client {application.name} ({application.client_id})"
            label = f"user {user.get_username()} via {client}" if user else client
        else:
            label = (
                f"operator {user.get_username()}"
                if user and via == "admin"
                else (f"user {user.get_username()}" if user else "anonymous")
            )
        return Actor(user=user, label=label, via=via)


@dataclass(frozen=True)
class _FixedSource:
    fixed: Actor

    def actor(self) -> Actor:
        return self.fixed


_source: ContextVar = ContextVar("audit_actor_source", default=None)
_reason: ContextVar[str] = ContextVar("audit_reason", default="")


@contextlib.contextmanager
def acting_for_request(request: HttpRequest):
    """Entries saved while serving ``request`` name its caller (resolved when each is saved)."""
    token = _source.set(_RequestSource(request))
    try:
        yield
    finally:
        _source.reset(token)


@contextlib.contextmanager
def acting_as_command(name: str):
    """Entries saved while a management command runs name it and the system user running it."""
    token = _source.set(
        _FixedSource(Actor(user=None, label=f"command {name} (run by {getpass.getuser()})", via="command"))
    )
    try:
        yield
    finally:
        _source.reset(token)


@contextlib.contextmanager
def reason_given(reason: str):
    """Entries saved inside carry the operator's reason (e.g. why a tenant was deactivated)."""
    token = _reason.set(reason.strip())
    try:
        yield
    finally:
        _reason.reset(token)


def current_actor() -> Actor | None:
    source = _source.get()
    return source.actor() if source is not None else None


def entry_fill(sender, instance, **kwargs) -> None:
    """``pre_save`` of a LogEntry: who acted, how and why. Entries written outside a request or
    command (Celery tasks, event handlers running on a worker) are the system's: no actor."""
    if instance.pk is not None:
        return
    actor = current_actor()
    data = dict(instance.additional_data or {})
    if actor is not None:
        if instance.actor_id is None and actor.user is not None:
            instance.actor = actor.user
        instance.actor_email = actor.label[:254]
        data.update(actor=actor.label, via=actor.via)
    else:
        data.setdefault("actor", "system")
        data.setdefault("via", "system")
    if _reason.get():
        data["reason"] = _reason.get()
    instance.additional_data = data
