"""Periodic tasks, seeded once; operators edit them in the admin afterwards (django-celery-beat).

Each app adds its schedules to ``PERIODIC_TASKS``; ``seed_periodic_tasks`` runs after every
``migrate`` and creates the ones that do not exist yet, never touching an existing one.
"""

from django.db import transaction

# name -> (task, every N seconds, description)
PERIODIC_TASKS: dict[str, tuple[str, int, str]] = {
    "events: sweep undispatched events and retry failed subscribers": (
        "events.sweep",
        15,
        "Dispatches events a crash left behind and retries failed in-process subscribers.",
    ),
    "accounts: delete expired OAuth tokens": (
        "accounts.clear_expired_tokens",
        24 * 3600,
        "Deletes expired access tokens and authorization codes, and refresh tokens past SBT_REFRESH_TOKEN_SECONDS.",
    ),
    "billing: push usage to the billing provider": (
        "billing.usage_push",
        86400,
        "Sends every closed hourly usage window since the last successful push to the billing provider.",
    ),
    "metering: create the monthly usage-event partitions ahead": (
        "metering.partitions_ensure",
        6 * 3600,
        "Creates this month's and the next months' partitions of the raw usage-event table (PostgreSQL).",
    ),
}


def seed_periodic_tasks(**kwargs) -> int:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    created = 0
    with transaction.atomic():
        for name, (task, seconds, description) in PERIODIC_TASKS.items():
            if PeriodicTask.objects.filter(name=name).exists():
                continue
            interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
            PeriodicTask.objects.create(name=name, task=task, interval=interval, description=description)
            created += 1
    return created
