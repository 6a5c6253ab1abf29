"""Group commit: concurrent small writes in one process share one transaction.

A request that ingests one event spends most of its database time on what every request pays
whatever its size: the meter and tenant reads, the statements' round trips, the commit and its
WAL flush, and the row locks on the rollups it updates, held until that flush. ``GroupCommit``
lets the threads of a threaded server (gunicorn ``--threads``) share that cost, the way
PostgreSQL itself groups commits: the first caller that finds no write in progress becomes the
leader and writes everything queued so far in one transaction; callers that arrive meanwhile
wait, and when the leader is done the first of them leads the next group. A lone request is
written at once (no timer, no added latency); under load, groups grow with the queue. Every
caller returns only after the transaction holding its items has committed, so a 2xx still means
durable.
"""

import threading
from collections.abc import Callable


class _Entry:
    __slots__ = ("_ready", "error", "item", "lead", "result", "size")

    def __init__(self, item, size: int):
        self.item = item
        self.size = size
        # held until the entry is ready: a bare lock costs a fraction of a threading.Event
        # (a Condition over a lock), and one is made per request
        self._ready = threading.Lock()
        self._ready.acquire()
        self.lead = False
        self.result = None
        self.error: BaseException | None = None

    def wait(self) -> None:
        self._ready.acquire()

    def set_ready(self) -> None:
        self._ready.release()


class GroupCommit:
    """``submit(item)`` returns ``flush([...items])[i]`` for its item, or raises what ``flush``
    raised for it.

    ``flush(items)`` writes a group in the calling (leader) thread and returns, per item, a result
    or an exception instance to raise in that item's caller. Groups hold at most ``max_size``
    (summed ``size`` of the items) unless a single item is larger; ``max_size`` may be a
    function, called each time a group is taken (so that it can follow a setting).
    """

    def __init__(self, flush: Callable[[list], list], max_size: int | Callable[[], int]):
        self._flush = flush
        self._max_size = max_size
        self._lock = threading.Lock()
        self._queue: list[_Entry] = []
        self._busy = False

    def submit(self, item, size: int = 1):
        entry = _Entry(item, size)
        with self._lock:
            self._queue.append(entry)
            lead = not self._busy
            self._busy = True
        if not lead:
            entry.wait()
            if not entry.lead:
                return self._outcome(entry)
        # the leader is always first in the queue: a fresh one found it empty, a promoted one
        # was first when promoted, and only the leader takes from the queue
        self._write(self._take())
        return self._outcome(entry)

    def _take(self) -> list[_Entry]:
        max_size = self._max_size() if callable(self._max_size) else self._max_size
        with self._lock:
            group, total = [], 0
            while self._queue and (not group or total + self._queue[0].size <= max_size):
                total += self._queue[0].size
                group.append(self._queue.pop(0))
            return group

    def _write(self, group: list[_Entry]) -> None:
        try:
            outcomes = self._flush([entry.item for entry in group])
        except BaseException as exc:  # noqa: BLE001 (re-raised in every caller: none may be left waiting)
            outcomes = [exc] * len(group)
        for entry, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                entry.error = outcome
            else:
                entry.result = outcome
        with self._lock:
            # hand the lead to the first waiter still queued, or stand down
            if self._queue:
                self._queue[0].lead = True
                self._queue[0].set_ready()
            else:
                self._busy = False
        for entry in group:
            entry.set_ready()  # held by then: a follower waits on it, the leader's was never or re-acquired

    @staticmethod
    def _outcome(entry: _Entry):
        if entry.error is not None:
            raise entry.error
        return entry.result
