"""Celery tasks of metering: the periodic task that creates the raw event table's monthly
partitions ahead of time (metering/partitions.py; scheduled in sbt_site/schedules.py)."""

from celery import shared_task
from django.utils import timezone

from metering.partitions import partitions_ensure_ahead
from sbt_site.conf import sbt_settings


@shared_task(name="metering.partitions_ensure")
def ensure_partitions() -> list[str]:
    return partitions_ensure_ahead(now=timezone.now(), months_ahead=sbt_settings.USAGE_PARTITIONS_AHEAD_MONTHS)
