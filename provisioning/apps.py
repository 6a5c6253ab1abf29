from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Provisioning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from provisioning import handlers  # noqa: F401 - registers the event-bus subscriber
        from sbt_site.schedules import PERIODIC_TASKS

        # The app adds its schedule where sbt_site.schedules says apps add theirs; seeding after
        # migrate creates it once, and the operator edits it in the admin afterwards.
        PERIODIC_TASKS.setdefault(
            "provisioning: retry runs whose worker died",
            (
                "provisioning.sweep",
                15,
                "Fails and retries provisioning runs whose worker stopped renewing its lease, and "
                "re-enqueues queued runs whose enqueue was lost.",
            ),
        )
