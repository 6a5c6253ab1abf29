from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from events import egress

        # A mistyped EVENT_WEBHOOK_ALLOWED_NETWORKS stops every process at start-up (web, worker,
        # commands) instead of failing each delivery later.
        egress.allowed_networks()
