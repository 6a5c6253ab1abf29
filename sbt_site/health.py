"""``GET /healthz``: liveness and readiness for load balancers and operators (no auth)."""

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sbt_site.celery import app as celery_app

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


@never_cache
@require_GET
def healthz(request):
    database = database_status()
    broker = broker_status()
    healthy = database["status"] == "ok" and broker["status"] == "ok"
    body = {"status": "ok" if healthy else "error", "database": database, "broker": broker}
    return JsonResponse(body, status=200 if healthy else 503)
