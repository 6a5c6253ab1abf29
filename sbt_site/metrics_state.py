"""The gauges read from the database and the broker when /metrics is scraped.

They describe shared state (the outbox, deliveries, pushes, Celery's queue), not one process:
every web node reports the same values, so alert on ``max()`` of them (deploy/prometheus/alerts.yml).
Each query reads only rows that are not finished (partial or status indexes), so a scrape stays
cheap however much history the tables hold. A part that cannot be read (the broker is down)
is left out of the scrape and counted in ``sbt_metrics_scrape_errors``, so the rest still
arrives and the alert on the missing series fires.
"""

import logging

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from billing.models import UsagePush
from events.models import Delivery, Event, HandlerRun
from sbt_site.celery import app as celery_app

logger = logging.getLogger(__name__)

# kombu's Redis transport keeps a queue's messages of each priority step in its own list:
# the queue's name for step 0, then name + this separator + the step.
REDIS_PRIORITY_SEPARATOR = "\x06\x16"
REDIS_PRIORITY_STEPS = (0, 3, 6, 9)


def _outbox(now) -> list:
    row = Event.objects.filter(dispatched_at__isnull=True).aggregate(count=Count("pk"), oldest=Min("created"))
    backlog = GaugeMetricFamily("sbt_outbox_undispatched_events", "Events in the outbox not yet dispatched.")
    backlog.add_metric([], row["count"])
    age = GaugeMetricFamily(
        "sbt_outbox_oldest_undispatched_age_seconds",
        "Age of the oldest undispatched event (0 when none is waiting).",
    )
    age.add_metric([], (now - row["oldest"]).total_seconds() if row["oldest"] else 0.0)
    return [backlog, age]


def _deliveries(now) -> list:
    rows = (
        Delivery.objects.filter(status__in=(Delivery.Status.PENDING, Delivery.Status.FAILED, Delivery.Status.DEAD))
        .values("subscription_id", "status")
        .annotate(count=Count("pk"), oldest=Min("event__created"))
        .order_by()
    )
    waiting = GaugeMetricFamily(
        "sbt_webhook_deliveries",
        "Webhook deliveries not succeeded, by subscription and status (pending, failed: to be retried, dead).",
        labels=["subscription", "status"],
    )
    lag = GaugeMetricFamily(
        "sbt_webhook_delivery_oldest_waiting_age_seconds",
        "Per subscription, the age of the oldest event still waiting for its delivery (pending or failed).",
        labels=["subscription"],
    )
    oldest: dict[str, object] = {}
    for row in rows:
        subscription = str(row["subscription_id"])
        waiting.add_metric([subscription, row["status"]], row["count"])
        if row["status"] != Delivery.Status.DEAD:
            known = oldest.get(subscription)
            oldest[subscription] = row["oldest"] if known is None else min(known, row["oldest"])
    for subscription, created in oldest.items():
        lag.add_metric([subscription], (now - created).total_seconds())
    return [waiting, lag]


def _handler_runs() -> list:
    rows = HandlerRun.objects.filter(status=HandlerRun.Status.DEAD).values("handler").annotate(count=Count("pk"))
    dead = GaugeMetricFamily(
        "sbt_event_handler_runs_dead_current",
        "In-process subscriber runs dead now (until replayed), by subscriber.",
        labels=["handler"],
    )
    for row in rows.order_by():
        dead.add_metric([row["handler"]], row["count"])
    return [dead]


def _usage_pushes() -> list:
    rows = UsagePush.objects.filter(status__in=UsagePush.UNFINISHED).values("status").annotate(count=Count("pk"))
    unfinished = GaugeMetricFamily(
        "sbt_usage_pushes_unfinished",
        "Usage pushes not (yet) recorded by the billing provider, by status (pending, failed, cancelling).",
        labels=["status"],
    )
    for row in rows.order_by():
        unfinished.add_metric([row["status"]], row["count"])
    return [unfinished]


def _celery_queues() -> list:
    """The messages waiting in each Celery queue, when the broker is Redis (LLEN of its lists)."""
    url = celery_app.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return []
    import redis

    names = {queue.name for queue in (celery_app.conf.task_queues or ())} or {celery_app.conf.task_default_queue}
    depth = GaugeMetricFamily("sbt_celery_queue_length", "Messages waiting in a Celery queue.", labels=["queue"])
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        with client.pipeline(transaction=False) as pipeline:
            for name in sorted(names):
                for step in REDIS_PRIORITY_STEPS:
                    pipeline.llen(name if step == 0 else f"{name}{REDIS_PRIORITY_SEPARATOR}{step}")
            lengths = iter(pipeline.execute())
    finally:
        client.close()
    for name in sorted(names):
        depth.add_metric([name], sum(next(lengths) for _ in REDIS_PRIORITY_STEPS))
    return [depth]


class StateCollector:
    """prometheus_client collector of the gauges above, read on each scrape."""

    def collect(self):
        now = timezone.now()
        parts = {
            "outbox": lambda: _outbox(now),
            "deliveries": lambda: _deliveries(now),
            "handler_runs": _handler_runs,
            "usage_pushes": _usage_pushes,
            "celery": _celery_queues,
        }
        errors = GaugeMetricFamily(
            "sbt_metrics_scrape_errors",
            "1 when a part of the scrape could not be read (its gauges are missing), by part.",
            labels=["part"],
        )
        for name, read in parts.items():
            try:
                families = read()
            except Exception as exc:  # noqa: BLE001 (one unreadable part must not lose the scrape)
                logger.warning("metrics: could not read %s: %s", name, exc)
                errors.add_metric([name], 1)
                continue
            errors.add_metric([name], 0)
            yield from families
        yield errors
