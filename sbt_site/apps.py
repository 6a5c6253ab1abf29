from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate


class SbtSiteConfig(AppConfig):
    name = "sbt_site"
    verbose_name = "Control plane"

    def ready(self):
        from django.apps import apps

        from sbt_site.checks import shared_cache_check
        from sbt_site.schedules import seed_periodic_tasks

        checks.register(shared_cache_check, checks.Tags.caches)

        # sbt_site has no models, so it gets no post_migrate of its own: seed once beat's tables exist.
        post_migrate.connect(
            seed_periodic_tasks,
            sender=apps.get_app_config("django_celery_beat"),
            dispatch_uid="sbt_site.seed_periodic_tasks",
        )
