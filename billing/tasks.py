"""Celery tasks of the billing app: thin wrappers around services."""

import logging

from celery import shared_task

from billing import services

logger = logging.getLogger(__name__)


@shared_task(name="billing.usage_push")
def usage_push() -> dict:
    result = services.usage_push_run()
    if result.failed:
        logger.warning("Usage push: %s record(s) failed; they are retried on the next run", result.failed)
    return {"sent": result.sent, "failed": result.failed, "value": f"{result.total('value_sent').normalize():f}"}
