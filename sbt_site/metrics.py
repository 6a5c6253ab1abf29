"""Prometheus metrics: what the processes count as they work, and how it is exposed.

Counters and histograms are incremented where the thing happens (the request middleware, the
ingestion, delivery, push and token services); the state of the database (outbox backlog,
pending and dead deliveries, Celery's queue) is read when /metrics is scraped
(sbt_site/metrics_state.py), so it is right whatever process serves the scrape.

Several processes: with ``PROMETHEUS_MULTIPROC_DIR`` set in the environment before the
process starts (gunicorn's workers, Celery's pool), each process writes its values to files in
that directory and a scrape adds them up (prometheus_client's multiprocess mode). The directory
must be emptied when the service starts (``gunicorn_on_starting``); ``gunicorn_child_exit``
tells prometheus_client that a worker is gone. ``SBT_METRICS_EXTRA_DIRS`` names the
directories of other processes on the same machine whose counters this one's /metrics adds
in (the Celery worker's), docs/operations.md "Metrics and alerts".

Label values are bounded: routes are URL patterns, meters and subscriptions the operator's,
client ids only of registered clients; never a raw path, a token or a secret.
"""

import glob
import os
import shutil

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if MULTIPROCESS_DIR:
    os.makedirs(MULTIPROCESS_DIR, exist_ok=True)

REQUEST_SECONDS = Histogram(
    "sbt_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL pattern (route), method and status code.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
USAGE_EVENTS = Counter(
    "sbt_usage_events",
    "Valid usage events, by meter and outcome (accepted: stored; duplicate: its eventId was stored before).",
    ["meter", "outcome"],
)
USAGE_EVENTS_REFUSED = Counter(
    "sbt_usage_events_refused",
    "Usage events refused with their batch, by reason (the error code the client got).",
    ["reason"],
)
GROUP_COMMIT_BATCHES = Histogram(
    "sbt_usage_group_commit_batches",
    "Ingestion requests that shared one group commit (metering/group_commit.py).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
DELIVERY_ATTEMPTS = Counter(
    "sbt_webhook_delivery_attempts",
    "Webhook delivery attempts, by subscription and outcome (succeeded; failed: retried later; dead: no more).",
    ["subscription", "outcome"],
)
DELIVERY_LAG_SECONDS = Histogram(
    "sbt_webhook_delivery_lag_seconds",
    "From an event's creation to its successful delivery to a subscription.",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)
HANDLER_RUNS_DEAD = Counter(
    "sbt_event_handler_runs_dead",
    "In-process subscriber runs that failed their last attempt, by subscriber.",
    ["handler"],
)
USAGE_PUSHES = Counter(
    "sbt_usage_pushes",
    "Usage pushes to the billing provider, by outcome (sent, failed).",
    ["outcome"],
)
TOKENS_ISSUED = Counter(
    "sbt_auth_tokens_issued",
    "Access tokens issued by /o/token/, by OAuth client id.",
    ["client_id"],
)
AUTH_FAILURES = Counter(
    "sbt_auth_failures",
    "Failed authentications, by endpoint (token: an OAuth client at /o/; api: a bearer token) and client id"
    " (unknown: no registered client).",
    ["endpoint", "client_id"],
)


def extra_dirs() -> list[str]:
    return [item.strip() for item in os.environ.get("SBT_METRICS_EXTRA_DIRS", "").split(",") if item.strip()]


class _FilesCollector(MultiProcessCollector):
    """prometheus_client's MultiProcessCollector over the files of several directories, merged
    as one (two collectors would expose the same metric twice)."""

    def __init__(self, paths: list[str]):
        self._paths = paths

    def collect(self):
        files = [name for path in self._paths for name in glob.glob(os.path.join(path, "*.db"))]
        return self.merge(files, accumulate=True)


def exposition(*collectors) -> bytes:
    """Every metric of this machine's processes, and those ``collectors`` read now, in
    Prometheus' text format."""
    registry = CollectorRegistry()
    registry.register(_FilesCollector([MULTIPROCESS_DIR, *extra_dirs()]) if MULTIPROCESS_DIR else _Default())
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


class _Default:
    """This process's own registry (the one-process servers: runserver, the tests)."""

    def collect(self):
        return REGISTRY.collect()


def gunicorn_on_starting(server) -> None:
    """gunicorn's ``on_starting`` hook: start with an empty multiprocess directory, so the
    counters of an earlier run are not added to this one's."""
    if MULTIPROCESS_DIR and os.path.isdir(MULTIPROCESS_DIR):
        for entry in os.scandir(MULTIPROCESS_DIR):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


def gunicorn_child_exit(server, worker) -> None:
    """gunicorn's ``child_exit`` hook: prometheus_client's ``mark_process_dead`` for the worker
    that exited (its live gauges stop counting; its counters are kept)."""
    if MULTIPROCESS_DIR:
        mark_process_dead(worker.pid, MULTIPROCESS_DIR)
