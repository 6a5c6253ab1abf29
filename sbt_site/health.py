"""``GET /healthz`` (liveness) and ``GET /readyz`` (readiness) for load balancers, deploy
scripts and operators (no auth).

``/healthz`` answers whether this process can serve: its database and broker answer. ``/readyz``
adds what a node needs to be put in rotation or a deploy to be called done: every migration of
this code applied, and the outbox flowing (the oldest undispatched event younger than
``SBT["READY_OUTBOX_LAG_SECONDS"]``; older means workers or the broker are stuck, and events
wait). docs/operations.md "Health and readiness".

Both answer whatever the request's Host header says (HealthProbeMiddleware): a Kubernetes or
load-balancer probe names the pod's or node's address, which ALLOWED_HOSTS does not list.
"""

import functools
import logging

from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.http import JsonResponse
from django.urls import resolve
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from events.selectors import outbox_oldest_undispatched_created
from sbt_site.celery import app as celery_app
from sbt_site.conf import sbt_settings

logger = logging.getLogger(__name__)


def database_status() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        logger.warning("healthz: database unreachable: %s", exc)
        return {"status": "error", "vendor": connection.vendor, "error": type(exc).__name__}
    return {"status": "ok", "vendor": connection.vendor}


def broker_status() -> dict:
    transport = celery_app.conf.broker_url.split("://", 1)[0] or "unknown"
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"status": "ok", "transport": "eager"}
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        logger.warning("healthz: broker unreachable: %s", exc)
        return {"status": "error", "transport": transport, "error": type(exc).__name__}
    return {"status": "ok", "transport": transport}


@functools.cache
def _latest_migrations() -> frozenset[tuple[str, str]]:
    """The last migration of each app in this code (read from disk once: it cannot change
    while the process runs)."""
    return frozenset(MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes())


def migrations_status() -> dict:
    """Whether the database has every migration of this code: the apps whose latest one is not
    recorded as applied (one query; a rolling deploy's new node is not ready until migrate ran)."""
    applied = MigrationRecorder(connection).applied_migrations()
    pending = sorted(app for app, name in _latest_migrations() if (app, name) not in applied)
    if pending:
        return {"status": "error", "pending_apps": pending}
    return {"status": "ok"}


def outbox_status() -> dict:
    oldest = outbox_oldest_undispatched_created()
    lag = max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0
    limit = sbt_settings.READY_OUTBOX_LAG_SECONDS
    return {"status": "ok" if lag <= limit else "error", "lag_seconds": round(lag, 1), "limit_seconds": limit}


def _answer(checks: dict) -> JsonResponse:
    healthy = all(check["status"] == "ok" for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503)


@never_cache
@require_GET
def healthz(request):
    return _answer({"database": database_status(), "broker": broker_status()})


@never_cache
@require_GET
def readyz(request):
    database = database_status()
    checks = {"database": database, "broker": broker_status()}
    if database["status"] == "ok":
        try:
            checks["migrations"] = migrations_status()
            checks["outbox"] = outbox_status()
        except Exception as exc:  # noqa: BLE001 - the database went away between two queries
            logger.warning("readyz: %s", exc)
            checks["migrations"] = checks["outbox"] = {"status": "error", "error": type(exc).__name__}
    else:
        checks["migrations"] = checks["outbox"] = {"status": "unknown"}
    return _answer(checks)


class HealthProbeMiddleware:
    """Serves ``GET /healthz`` and ``/readyz`` before any middleware that reads the Host header.

    Django checks the Host against ALLOWED_HOSTS when something calls ``request.get_host()``
    (CommonMiddleware does, for every request), and answers 400 when it is not listed; a probe
    sent to ``http://10.1.2.3:8000/healthz`` by a kubelet or a load balancer would never pass.
    These two views read nothing of the request and build no URL, so they are answered here,
    for exactly these two paths; every other path, ``/healthz/`` included, still meets the Host
    check. Place it right after RequestObservabilityMiddleware, which does not read the Host,
    so probes keep their request id, log line and latency metric (labelled with their route).
    """

    VIEWS = {"/healthz": healthz, "/readyz": readyz}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = self.VIEWS.get(request.path_info)
        if view is None:
            return self.get_response(request)
        request.resolver_match = resolve(request.path_info)  # the route the metrics and logs name
        return view(request)
