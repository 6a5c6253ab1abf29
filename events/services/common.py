"""The retry state machine shared by subscriber runs, webhook deliveries and publications to
the external bus: attempts, exponential backoff with jitter, dead after the configured number."""

import random
from datetime import timedelta

from django.utils import timezone

from events.models import BusPublication, Delivery, HandlerRun

HANDLER_BACKOFF_MAX_SECONDS = 3600


def _backoff(attempts: int, *, base: float, cap: float) -> timedelta:
    """Exponential backoff with "equal jitter" (AWS architecture blog): half fixed, half random,
    so retries of many failures spread out but never come back immediately."""
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def _attempt_record(
    row: HandlerRun | Delivery | BusPublication, *, error: str | None, max_attempts: int, base: float, cap: float
) -> None:
    """The retry state machine of subscriber runs and webhook deliveries, for an attempt just
    made (``row.attempts`` counts it): succeeded when ``error`` is None; else failed and due
    again after the backoff, or dead once it was the ``max_attempts``-th. The caller saves."""
    if error is None:
        row.status = row.Status.SUCCEEDED
        row.next_attempt_at = None
        row.last_error = ""
        return
    row.last_error = error[:4000]
    if row.attempts >= max_attempts:
        row.status = row.Status.DEAD
        row.next_attempt_at = None
    else:
        row.status = row.Status.FAILED
        row.next_attempt_at = timezone.now() + _backoff(row.attempts, base=base, cap=cap)
