"""Fixed-window counters on the shared cache (``CACHES["default"]``, Redis in production): the
API's rate limit per client (sbt_site/api/throttling.py) and metering's ingestion quota per
tenant (metering/services/quota.py) both count with ``windows_charge``.

Why not DRF's own ``SimpleRateThrottle`` counting: it keeps the time of every request of the
window in one cache entry, read and written back whole on each request (a list of 6,000 floats
for a client at 6000/min), and two processes doing that at once lose each other's requests. A
counter per window is one integer, changed atomically (``INCRBY`` on Redis), and the requests of
one client in a group commit are counted with one increment. What it costs: a client can send up
to twice its limit around the boundary of two windows (the end of one and the start of the next).
"""

import logging
import math
import time
from collections import defaultdict

from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What a cache that cannot be reached raises (Redis: a connection refused, a timeout).
CACHE_ERRORS = (RedisError, OSError)


def _increment(key: str, amount: int, timeout: int) -> int:
    try:
        return cache.incr(key, amount)
    except ValueError:  # the first of its window (Django's incr refuses a missing key)
        if cache.add(key, amount, timeout):
            return amount
        return cache.incr(key, amount)  # another process added it in between


def windows_charge(requests: list[dict[str, int]], *, limit: int, seconds: int) -> list[int | None]:
    """Count ``requests`` in order, each adding its amounts to the counters it names, in the
    current window of ``seconds`` of each counter; a counter may reach ``limit`` in a window.

    A request is allowed when every counter it names stays within the limit; a refused request
    adds nothing (a batch too big for what is left does not use up the rest). Returns per
    request None (allowed, counted) or the seconds until its window ends (``Retry-After``).

    The cache is reached once per distinct counter, and once more for a counter that refused
    something. When the cache cannot be reached, every request is allowed and the error logged:
    the limits protect the service, and a Redis outage must not stop it.
    """
    now = time.time()
    window = int(now // seconds)
    retry_after = max(1, math.ceil((window + 1) * seconds - now))
    totals: dict[str, int] = defaultdict(int)
    for request in requests:
        for counter, amount in request.items():
            totals[counter] += amount
    keys = {counter: f"{counter}:{seconds}:{window}" for counter in totals}
    try:
        # an entry outlives its window, so that its last increment never finds it gone
        used = {counter: _increment(keys[counter], total, 2 * seconds) - total for counter, total in totals.items()}
    except CACHE_ERRORS as exc:  # one line per request, no traceback: this repeats until Redis is back
        logger.warning("Rate limits not applied: the cache cannot be reached (%s)", exc)
        return [None] * len(requests)
    outcomes: list[int | None] = []
    refused: dict[str, int] = defaultdict(int)
    for request in requests:
        if all(used[counter] + amount <= limit for counter, amount in request.items()):
            for counter, amount in request.items():
                used[counter] += amount
            outcomes.append(None)
        else:
            for counter, amount in request.items():
                refused[counter] += amount
            outcomes.append(retry_after)
    try:
        for counter, amount in refused.items():
            cache.decr(keys[counter], amount)
    except CACHE_ERRORS as exc:
        logger.warning("Refused requests stay counted: the cache cannot be reached (%s)", exc)
    except ValueError:
        pass  # the window's entry expired meanwhile: nothing left to take back
    return outcomes
