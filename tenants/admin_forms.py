"""The console's tenant forms: onboarding (the service behind POST /tenant-registrations) and a
provisioning result recorded by hand (the service behind provisionSuccess / provisionFailure).

Each form's ``clean`` calls the service itself: only the service decides what it accepts (a
name already taken, a bad price list, a transition the status flow refuses), and its refusal
must show on the form with the API's message, never as a page that says "saved" and an error.
The admin's views run in a transaction, so nothing outlives a form that fails later.
"""

import json

from django import forms

from sbt_site.console_forms import CreatedByServiceForm
from sbt_site.errors import ServiceError
from tenants import services
from tenants.models import Tenant


def _service_errors(form: forms.Form, error: ServiceError, fields: dict[str, str]) -> None:
    """Put a service's refusal next to the field it names (its ``loc``), else above the form."""
    for item in error.detail or [{"loc": [], "msg": error.message}]:
        field = next((fields[part] for part in reversed(item.get("loc") or []) if part in fields), None)
        form.add_error(field, item["msg"] if field else error.message)


def _json_field(label: str, help_text: str, *, empty: str) -> forms.CharField:
    return forms.CharField(
        label=label, required=False, initial=empty, help_text=help_text, widget=forms.Textarea(attrs={"rows": 3})
    )


def _parse_json(form: forms.Form, name: str, kind: type, empty):
    text = form.cleaned_data.get(name, "").strip()
    if not text:
        return empty
    try:
        value = json.loads(text)
    except ValueError as exc:
        form.add_error(name, f"Not valid JSON: {exc}")
        return empty
    if not isinstance(value, kind):
        form.add_error(name, f"Must be a JSON {'list' if kind is list else 'object'}.")
        return empty
    return value


class TenantOnboardForm(CreatedByServiceForm):
    """POST /tenant-registrations from the console: tenant data (name, email, tier, prices and any
    free-form keys) and registration data; onboardingRequest goes out when it is saved."""

    tenant_name = forms.CharField(label="Tenant name", max_length=255)
    email = forms.CharField(max_length=254, required=False)
    tier = forms.CharField(max_length=64, required=False)
    prices = _json_field(
        "Prices",
        'Billing prices, e.g. [{"id": "price_123", "metricName": "api_calls"}] (metricName: a meter API name).',
        empty="[]",
    )
    tenant_data = _json_field("Other tenant data", 'Free-form keys, e.g. {"region": "eu"}.', empty="{}")
    registration_data = _json_field("Registration data", "Free-form tenantRegistrationData keys.", empty="{}")

    # the API's field names in a service's error, as this form's
    FIELDS = {"tenantName": "tenant_name", "email": "email", "tier": "tier", "prices": "prices",
              "tenantData": "tenant_data", "tenantRegistrationData": "registration_data"}  # fmt: skip

    class Meta:
        model = Tenant
        fields = ()

    def clean(self):
        self.parsed = {
            "prices": _parse_json(self, "prices", list, []),
            "extra": _parse_json(self, "tenant_data", dict, {}),
            "registration_data": _parse_json(self, "registration_data", dict, {}),
        }
        return super().clean()

    def create(self, cleaned):
        tenant_data = {**self.parsed["extra"], "tenantName": cleaned["tenant_name"], "prices": self.parsed["prices"]}
        for key in ("email", "tier"):
            if cleaned.get(key):
                tenant_data[key] = cleaned[key]
        registration = services.tenant_registration_create(
            tenant_data=tenant_data, registration_data=self.parsed["registration_data"]
        )
        return registration.tenant

    def service_refused(self, error):
        _service_errors(self, error, self.FIELDS)


class ProvisioningResultForm(forms.Form):
    """What the application plane would report with provisionSuccess / provisionFailure."""

    OUTCOMES = {"created": "provisionSuccess", "failed": "provisionFailure"}

    outcome = forms.ChoiceField(
        choices=[("created", "created: the tenant's resources exist"), ("failed", "failed: provisioning did not work")],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}), help_text="Why it failed (kept)."
    )
    tenant_config = _json_field(
        "Tenant config",
        'Optional tenantConfig the application plane would send, e.g. {"url": "https://..."}.',
        empty="",
    )

    def __init__(self, *args, registration, **kwargs):
        super().__init__(*args, **kwargs)
        self.registration = registration

    def clean(self):
        cleaned = super().clean()
        config = _parse_json(self, "tenant_config", dict, None)
        if self.errors:
            return cleaned
        if cleaned["outcome"] == "failed" and not cleaned["reason"].strip():
            self.add_error("reason", "Say why provisioning failed: the registration keeps the reason.")
            return cleaned
        job_output = {"tenantData": {"tenantConfig": config}} if config is not None else {}
        try:
            services.tenant_registration_apply_job_output(
                registration_id=self.registration.pk,
                outcome=self.OUTCOMES[cleaned["outcome"]],
                job_output=job_output,
                reason=cleaned["reason"].strip() or None,
            )
        except ServiceError as error:
            _service_errors(self, error, {"tenantConfig": "tenant_config"})
        return cleaned
