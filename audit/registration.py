"""Which models the audit log follows, and with which fields left out.

The control plane's state: tenants, registrations, users, OAuth clients, meters, webhook
subscriptions, billing customers and the periodic-task schedules. Not the ledgers (events,
deliveries, handler runs, usage events, usage pushes, billing webhook events): each of their rows
already is the record of something that happened, is never edited by an operator, and some are
written per request on the hot path, where an entry per row would double the writes. Tokens are
left out for the same reason; their revocation follows from an audited change (a user disabled,
a tenant deactivated, a client's scopes changed).
"""

from auditlog.registry import auditlog
from django.apps import apps
from django.db.models.signals import pre_save

from audit.context import entry_fill

# model label -> auditlog.register options. Timestamps the model maintains itself would make
# every entry show a change of "modified"; secrets are never copied into the log.
AUDITED_MODELS: dict[str, dict] = {
    "tenants.Tenant": {"exclude_fields": ["modified"]},
    "tenants.TenantRegistration": {"exclude_fields": ["modified"]},
    "accounts.User": {"exclude_fields": ["password", "last_login"]},
    "accounts.OAuthApplication": {"exclude_fields": ["client_secret", "updated"]},
    "metering.Meter": {"exclude_fields": ["modified"]},
    "events.Subscription": {"exclude_fields": ["secret_encrypted", "modified"]},
    "billing.BillingCustomer": {"exclude_fields": ["modified"]},
    "django_celery_beat.PeriodicTask": {"exclude_fields": ["last_run_at", "total_run_count", "date_changed"]},
}


def register_audited_models() -> None:
    for label, options in AUDITED_MODELS.items():
        model = apps.get_model(label)
        if not auditlog.contains(model):
            auditlog.register(model, **options)
    pre_save.connect(entry_fill, sender=apps.get_model("auditlog.LogEntry"), dispatch_uid="audit.entry_fill")
