"""The provisioning app's subscriber: every trigger event queues the runs of the jobs listening
to it (the scripts themselves run later, on the ``provisioning`` queue)."""

from events.registry import subscriber
from provisioning.services import TRIGGER_EVENTS, runs_create_for_event


@subscriber(*TRIGGER_EVENTS, name="provisioning.handlers.queue_job_runs")
def queue_job_runs(event) -> None:
    runs_create_for_event(event=event)
