"""Every ModelAdmin, walked: what it lets an operator add, change, delete or run either goes
through a service (the same function the API and the commands call) or is disabled.

``CONSOLE`` declares, per registered model, each way of writing through the console:
- ``DISABLED``: the admin refuses it (its permission method says no, and no action offers it);
- ``Service(hook, name)``: the code at ``hook`` (a dotted path into the admin module or its
  forms) calls ``services.<name>`` (checked on its source, so a hook that stops calling the
  service fails here);
- ``Library(reason)``: a third-party app's own rows, written by its own admin by design.
A model registered without a declaration, an action not declared, or a declaration that no
longer holds fails the test; the behaviour of the main ones is tested in each app's tests and
in test_console_operator.py.
"""

import ast
import inspect
import textwrap
from dataclasses import dataclass
from importlib import import_module

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory

DISABLED = "disabled"


@dataclass(frozen=True)
class Service:
    hook: str  # "module:Class.method"
    name: str  # the service function the hook calls


@dataclass(frozen=True)
class Library:
    reason: str


LEDGER = {"add": DISABLED, "change": DISABLED, "delete": DISABLED}
# Tokens are never deleted (django-oauth-toolkit's "revoke" action instead); a grant or an ID
# token deleted is one that can no longer be exchanged or matched.
OAUTH_ISSUED = {
    "add": DISABLED,
    "change": DISABLED,
    "delete": Library("django-oauth-toolkit: a deleted grant or ID token is no longer usable"),
}
BEAT = Library("django-celery-beat's schedules: seeded once, then edited by operators in the admin (STYLE.md 12)")
AXES = Library("django-axes' lockout records (its change page is read-only): deleting one unlocks the login")
TENANT_LIFECYCLE = {
    verb: Service("tenants.admin:LIFECYCLE", f"tenant_{verb}") for verb in ("offboard", "activate", "deactivate")
}

CONSOLE = {
    "tenants.Tenant": {
        "add": Service("tenants.admin_forms:TenantOnboardForm.create", "tenant_registration_create"),
        "change": DISABLED,
        "delete": DISABLED,
        "actions": TENANT_LIFECYCLE,
        "views": {
            "provisioning result": Service(
                "tenants.admin_forms:ProvisioningResultForm.clean", "tenant_registration_apply_job_output"
            ),
        },
    },
    "tenants.TenantRegistration": {
        "add": DISABLED,
        "change": DISABLED,
        "delete": DISABLED,
        "actions": TENANT_LIFECYCLE,
    },
    "metering.Meter": {
        "add": Service("metering.admin:MeterAdmin.save_model", "meter_create"),
        "change": Service("metering.admin:MeterAdmin.save_model", "meter_update"),
        "delete": Service("metering.admin:MeterAdmin.delete_view", "meter_delete"),
        "actions": {
            "archive_meters": Service("metering.admin:MeterAdmin.archive_meters", "meter_archive"),
            "delete_meters": Service("metering.admin:MeterAdmin.delete_meters", "meter_delete"),
        },
    },
    "metering.UsageEvent": {
        **LEDGER,
        "actions": {"cancel_events": Service("metering.admin:UsageEventAdmin.cancel_events", "usage_events_cancel")},
    },
    "metering.MeteringCustomer": LEDGER,
    # added and removed by the metering_rollup_zones command (its backfill outlasts a request)
    "metering.RollupZone": LEDGER,
    "billing.BillingCustomer": {
        **LEDGER,
        "actions": {
            "sync_subscription": Service(
                "billing.admin:BillingCustomerAdmin.sync_subscription", "billing_subscriptions_sync"
            )
        },
    },
    "billing.UsagePush": {
        **LEDGER,
        "actions": {"retry": Service("billing.admin:UsagePushAdmin.retry", "usage_pushes_retry")},
    },
    "billing.WebhookEvent": {
        **LEDGER,
        "actions": {"reprocess": Service("billing.admin:WebhookEventAdmin.reprocess", "webhook_events_reprocess")},
    },
    "events.Event": {
        **LEDGER,
        "actions": {"replay_event": Service("events.admin:EventAdmin.replay_event", "event_replay")},
    },
    "events.Delivery": {
        **LEDGER,
        "actions": {"replay_delivery": Service("events.admin:DeliveryAdmin.replay_delivery", "delivery_replay")},
    },
    "events.BusPublication": {
        **LEDGER,
        "actions": {
            "replay_publication": Service("events.admin:BusPublicationAdmin.replay_publication", "event_replay")
        },
    },
    "events.Subscription": {
        "add": Service("events.admin:SubscriptionAdmin.save_model", "subscription_create"),
        "change": Service("events.admin:SubscriptionAdmin.save_model", "subscription_update"),
        "delete": DISABLED,
        "actions": {
            "send_test_event": Service("events.admin:SubscriptionAdmin.send_test_event", "subscription_send_test_event")
        },
    },
    "provisioning.ProvisioningJob": {
        "add": Service("provisioning.admin:ProvisioningJobAdmin.save_model", "provisioning_job_create"),
        "change": Service("provisioning.admin:ProvisioningJobAdmin.save_model", "provisioning_job_update"),
        "delete": DISABLED,
        "views": {
            "test run": Service("provisioning.admin:ProvisioningJobAdmin.test_run_view", "provisioning_test_run_create")
        },
    },
    "provisioning.ProvisioningRun": {
        **LEDGER,
        "actions": {
            "retry_runs": Service("provisioning.admin:ProvisioningRunAdmin.retry_runs", "provisioning_run_retry")
        },
        "views": {"retry": Service("provisioning.admin:ProvisioningRunAdmin.retry_view", "provisioning_run_retry")},
    },
    "accounts.User": {
        "add": Service("accounts.admin:UserAddForm.create", "user_create"),
        "change": Service("accounts.admin:UserChangeForm.clean", "user_update"),
        "delete": Service("accounts.admin:UserAdmin.delete_model", "user_delete"),
        "bulk delete": Service("accounts.admin:UserAdmin.delete_queryset", "user_delete"),
        "actions": {
            "disable_users": Service("accounts.admin:UserAdmin.disable_users", "user_disable"),
            "enable_users": Service("accounts.admin:UserAdmin.enable_users", "user_enable"),
        },
    },
    "accounts.OAuthApplication": {
        "add": Service("accounts.admin:OAuthClientAddForm.create", "oauth_client_create"),
        "change": Service("accounts.admin:OAuthApplicationAdmin.save_model", "oauth_client_tokens_revoke"),
        "delete": Library("django-oauth-toolkit: a deleted client's tokens go with it"),
    },
    "oauth2_provider.AccessToken": {
        **LEDGER,
        "actions": {"revoke_tokens": Library("django-oauth-toolkit's revoke")},
    },
    "oauth2_provider.RefreshToken": {
        **LEDGER,
        "actions": {"revoke_tokens": Library("django-oauth-toolkit's revoke")},
    },
    "oauth2_provider.Grant": OAUTH_ISSUED,
    "oauth2_provider.IDToken": OAUTH_ISSUED,
    "auth.Group": {
        "add": Library("Django's permission groups for operators: no service owns them"),
        "change": Library("Django's permission groups for operators"),
        "delete": Library("Django's permission groups for operators"),
    },
    "auditlog.LogEntry": LEDGER,
    **{
        f"django_celery_beat.{name}": {
            "add": BEAT,
            "change": BEAT,
            "delete": BEAT,
            "actions": dict.fromkeys(("enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks"), BEAT)
            if name == "PeriodicTask"
            else {},
        }
        for name in ("PeriodicTask", "ClockedSchedule", "CrontabSchedule", "SolarSchedule", "IntervalSchedule")
    },
    "axes.AccessAttempt": {
        "add": DISABLED,
        "change": AXES,
        "delete": AXES,
        "actions": {"cleanup_expired_attempts": AXES},
    },
    "axes.AccessLog": {"add": DISABLED, "change": AXES, "delete": AXES},
    "axes.AccessFailureLog": {"add": DISABLED, "change": AXES, "delete": AXES},
}


def _source(hook: str) -> ast.AST:
    module_name, _, attribute = hook.partition(":")
    target = import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if isinstance(target, dict):  # a table of services (tenants.admin.LIFECYCLE)
        source = inspect.getsource(import_module(module_name))
    else:
        source = textwrap.dedent(inspect.getsource(target))
    return ast.parse(source)


def _calls_service(tree: ast.AST, name: str) -> bool:
    """Whether the code names ``services.<name>`` (called there, or listed in a table it calls)."""
    return any(
        isinstance(node, ast.Attribute) and node.attr == name and isinstance(node.value, ast.Name)
        and node.value.id == "services"
        for node in ast.walk(tree)
    )  # fmt: skip


@pytest.fixture
def operator_request(db):
    operator = get_user_model().objects.create_superuser(username="operator", password="x" * 16)
    request = RequestFactory().get("/admin/")
    request.user = operator
    return request


def _admins():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def test_every_registered_model_admin_is_declared():
    registered = {model._meta.label for model in admin.site._registry}
    assert registered - set(CONSOLE) == set(), "declare how the console writes these models"
    assert set(CONSOLE) - registered == set(), "declared but no longer registered"


@pytest.mark.parametrize(("model", "model_admin"), _admins(), ids=lambda value: getattr(value, "__name__", ""))
def test_each_way_to_write_goes_through_a_service_or_is_disabled(model, model_admin, operator_request):
    declared = CONSOLE[model._meta.label]
    permission = {
        "add": model_admin.has_add_permission(operator_request),
        "change": model_admin.has_change_permission(operator_request),
        "delete": model_admin.has_delete_permission(operator_request),
    }
    actions = set(model_admin.get_actions(operator_request))
    for kind in ("add", "change", "delete"):
        rule = declared[kind]
        if rule == DISABLED:
            assert permission[kind] is False, f"{model._meta.label}: {kind} is declared disabled"
        else:
            assert permission[kind] is True, f"{model._meta.label}: {kind} is declared possible but is refused"
        if isinstance(rule, Service):
            assert _calls_service(_source(rule.hook), rule.name), f"{rule.hook} no longer calls services.{rule.name}"
    if isinstance(declared["delete"], Service) and "delete_selected" in actions:
        # Django's "Delete selected" calls delete_queryset, which must call the service too
        bulk = declared.get("bulk delete")
        assert bulk and _calls_service(_source(bulk.hook), bulk.name), "bulk delete would bypass the service"
    declared_actions = declared.get("actions", {})
    assert actions - {"delete_selected"} == set(declared_actions), f"{model._meta.label}: undeclared actions"
    for rule in declared_actions.values():
        if isinstance(rule, Service):
            assert _calls_service(_source(rule.hook), rule.name), f"{rule.hook} no longer calls services.{rule.name}"
    for rule in declared.get("views", {}).values():
        assert _calls_service(_source(rule.hook), rule.name), f"{rule.hook} no longer calls services.{rule.name}"


def test_the_checker_fires_on_a_hook_that_writes_directly():
    direct = ast.parse("def save_model(self, request, obj, form, change):\n    obj.save()\n")
    through = ast.parse(
        "def save_model(self, request, obj, form, change):\n    services.meter_create(spec=form.spec)\n"
    )
    assert not _calls_service(direct, "meter_create")
    assert _calls_service(through, "meter_create")
