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


def seed_periodic_tasks(*, apps=None, using="default", **kwargs) -> int:
    """post_migrate receiver. ``apps`` is the migration state: beat's tables may not exist yet
    (``migrate <app> <target>`` on a fresh database), and then there is nothing to seed."""
    if apps is None:
        from django.apps import apps
    try:
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    except LookupError:
        return 0

    created = 0
    with transaction.atomic(using=using):
        for name, (task, seconds, description) in PERIODIC_TASKS.items():
            if PeriodicTask.objects.using(using).filter(name=name).exists():
                continue
            interval, _ = IntervalSchedule.objects.using(using).get_or_create(every=seconds, period="seconds")
            PeriodicTask.objects.using(using).create(name=name, task=task, interval=interval, description=description)
            created += 1
    return created
