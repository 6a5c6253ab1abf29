"""Operators' console for provisioning: jobs are written here and nowhere else (scripts are code:
never by a tenant, never over the API), each through the services; runs are records with their
log, outputs and a retry button."""

import json

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from provisioning import services
from provisioning.models import ProvisioningJob, ProvisioningRun
from sbt_site.console_ledger import LedgerAdmin
from sbt_site.errors import InvalidInput, ServiceError

EDITABLE_FIELDS = services.jobs.FIELDS


class ProvisioningJobForm(forms.ModelForm):
    class Meta:
        model = ProvisioningJob
        fields = EDITABLE_FIELDS
        widgets = {
            "script": forms.Textarea(attrs={"rows": 16, "cols": 100, "style": "font-family: monospace"}),
            "post_script": forms.Textarea(attrs={"rows": 4, "cols": 100, "style": "font-family: monospace"}),
        }

    def clean(self):
        cleaned = super().clean()
        for field in (
            "string_variables",
            "json_variables",
            "worker_environment",
            "tenant_data_outputs",
            "registration_data_outputs",
        ):
            if cleaned.get(field) is None and field not in self.errors:
                cleaned[field] = []
        for field in ("environment", "failure_status"):
            if cleaned.get(field) is None and field not in self.errors:
                cleaned[field] = {}
        values = {field: cleaned[field] for field in EDITABLE_FIELDS if field in cleaned}
        try:
            # The service's own validation, so the form shows exactly what an import would refuse.
            self.cleaned_job = services.job_definition_clean(
                values, instance=self.instance if self.instance.pk else None
            )
        except InvalidInput as exc:
            for item in exc.detail or []:
                field = item["loc"][0]
                self.add_error(field if field in self.fields else None, item["msg"])
        return cleaned


@admin.register(ProvisioningJob)
class ProvisioningJobAdmin(admin.ModelAdmin):
    form = ProvisioningJobForm
    change_form_template = "admin/provisioning/provisioningjob/change_form.html"
    list_display = ("name", "incoming_event", "success_event", "enabled", "retryable", "timeout_seconds", "modified")
    list_filter = ("enabled", "incoming_event")
    search_fields = ("name", "description")
    fieldsets = (
        (
            None,
            {"fields": ("name", "description", "enabled", "incoming_event", "interpreter", "script", "post_script")},
        ),
        (
            "Variables in (from the event, fixed, from the worker)",
            {
                "fields": (
                    "job_identifier_key",
                    "string_variables",
                    "json_variables",
                    "environment",
                    "worker_environment",
                )
            },
        ),
        (
            "Outcome",
            {
                "fields": (
                    "tenant_data_outputs",
                    "registration_data_outputs",
                    "success_event",
                    "failure_event",
                    "failure_status",
                )
            },
        ),
        ("Limits and retries", {"fields": ("timeout_seconds", "retryable", "max_attempts", "retry_backoff_seconds")}),
    )

    def save_model(self, request, obj, form, change):
        values = {field: form.cleaned_data[field] for field in EDITABLE_FIELDS}
        if change:
            job = services.provisioning_job_update(job_id=obj.pk, values=values)
        else:
            job = services.provisioning_job_create(values=values)
        obj.pk = job.pk

    def has_delete_permission(self, request, obj=None):
        return False  # its runs are the record of what ran: disable a job instead

    def get_urls(self):
        test_run = path(
            "<int:job_id>/test-run/", self.admin_site.admin_view(self.test_run_view), name="provisioning_job_test_run"
        )
        return [test_run, *super().get_urls()]

    def test_run_view(self, request, job_id):
        """Run the job against a made-up event detail (nothing is reported to the control plane)."""
        job = get_object_or_404(ProvisioningJob, pk=job_id)
        sample = {"tenantId": "", "tenantRegistrationId": "test-registration"}
        sample.update({name: f"test-{name}" for name in job.string_variables})
        sample.update({name: {} for name in job.json_variables})
        detail_text = request.POST.get("detail", json.dumps(sample, indent=2))
        error = ""
        if request.method == "POST":
            try:
                detail = json.loads(detail_text)
                run = services.provisioning_test_run_create(job_id=job.pk, detail=detail)
            except json.JSONDecodeError as exc:
                error = f"Not JSON: {exc}"
            except ServiceError as exc:
                error = exc.message
            else:
                self.message_user(request, f"Test run of {job} queued.", level=messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:provisioning_provisioningrun_change", args=[run.pk]))
        context = {**self.admin_site.each_context(request), "job": job, "detail": detail_text, "error": error}
        context["opts"] = self.model._meta
        context["title"] = f"Run {job} against a test event"
        return TemplateResponse(request, "admin/provisioning/test_run.html", context)


@admin.register(ProvisioningRun)
class ProvisioningRunAdmin(LedgerAdmin):
    change_form_template = "admin/provisioning/provisioningrun/change_form.html"
    list_display = ("created", "job", "attempt", "status_shown", "tenant", "event_type", "exit_code", "finished")
    list_filter = ("status", "job", "created")
    list_select_related = ("job", "tenant", "event")
    search_fields = ("id", "tenant__name", "event__id", "reason")
    date_hierarchy = "created"
    actions = ("retry_runs",)
    fields = (
        "job",
        "attempt",
        "status",
        "reason",
        "tenant",
        "event",
        "detail",
        "exit_code",
        "outputs",
        "reported_event",
        "report_error",
        "worker",
        "lease_expires_at",
        "started",
        "finished",
        "created",
    )
    readonly_fields = fields  # runs are the record of what ran against the tenants

    @admin.display(description="status", ordering="status")
    def status_shown(self, run):
        if run.is_test:
            return f"{run.get_status_display()} (test)"
        return run.get_status_display()

    @admin.display(description="event")
    def event_type(self, run):
        return run.event.detail_type if run.event_id else "test event"

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        context["run_active"] = obj is not None and obj.status in ProvisioningRun.ACTIVE
        context["run_retryable"] = obj is not None and obj.status in (
            ProvisioningRun.Status.FAILED,
            ProvisioningRun.Status.TIMED_OUT,
        )
        context["run_log"] = obj.log if obj is not None else ""
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    def get_urls(self):
        retry = path("<uuid:run_id>/retry/", self.admin_site.admin_view(self.retry_view), name="provisioning_run_retry")
        return [retry, *super().get_urls()]

    def retry_view(self, request, run_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            run = services.provisioning_run_retry(run_id=run_id)
        except ServiceError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:provisioning_provisioningrun_change", args=[run_id]))
        self.message_user(request, format_html("Attempt {} queued.", run.attempt), level=messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:provisioning_provisioningrun_change", args=[run.pk]))

    @admin.action(description="Retry (a new attempt for each failed run)")
    def retry_runs(self, request, queryset):
        retried, refused = 0, []
        for run in queryset:
            try:
                services.provisioning_run_retry(run_id=run.pk)
                retried += 1
            except ServiceError as exc:
                refused.append(exc.message)
        if retried:
            self.message_user(request, f"{retried} run(s) retried.", level=messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, level=messages.WARNING)
