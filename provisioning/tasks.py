"""Celery tasks of the provisioning app: thin wrappers around services.

``provisioning.run`` is routed to the ``provisioning`` queue (settings.CELERY_TASK_ROUTES); its
retries are the run's own (new attempts), so the task itself never retries.
"""

from celery import shared_task

from provisioning import services


@shared_task(name="provisioning.run")
def run_provisioning(run_id: str) -> None:
    services.provisioning_run_execute(run_id=run_id)


@shared_task(name="provisioning.sweep")
def sweep_provisioning() -> dict:
    return services.provisioning_runs_sweep()
