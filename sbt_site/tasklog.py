"""The log context across Celery: a task carries the context of whoever enqueued it (its
request id, tenant and client) in a message header, runs with it, and logs one line when it
ends (logger ``sbt.tasks``: name, id, state, duration)."""

import logging
import time

from celery import signals

from sbt_site import logcontext

logger = logging.getLogger("sbt.tasks")

HEADER = "sbt_log_context"

# task id -> (the token that restores the worker's context, when the task started)
_running: dict[str, tuple] = {}


@signals.before_task_publish.connect
def _context_attach(headers=None, **kwargs) -> None:
    context = logcontext.get()
    if headers is not None and context:
        headers[HEADER] = context


@signals.task_prerun.connect
def _context_enter(task_id=None, task=None, **kwargs) -> None:
    if task.request.is_eager:
        fields = logcontext.get()  # run in the caller's thread: its context goes on
    else:
        sent = task.request.get(HEADER)
        fields = {name: sent.get(name) for name in logcontext.FIELDS} if isinstance(sent, dict) else {}
        fields["request_id"] = logcontext.accepted_request_id(fields.get("request_id"))
    _running[task_id] = (logcontext.push(**fields), time.perf_counter())


@signals.task_postrun.connect
def _context_leave(task_id=None, task=None, state=None, **kwargs) -> None:
    token, started = _running.pop(task_id, (None, None))
    if started is not None and logger.isEnabledFor(logging.INFO):
        seconds = time.perf_counter() - started
        logger.info(
            "task %s %s",
            task.name,
            state,
            extra={"task": task.name, "task_id": task_id, "state": state, "duration_ms": round(seconds * 1000, 3)},
        )
    if token is not None:
        logcontext.pop(token)
