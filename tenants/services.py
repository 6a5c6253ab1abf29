"""Writes of the tenants app: onboarding, offboarding and the registration status flow.

Every function runs in one transaction and publishes its event through the outbox in that
transaction, so an event exists exactly when the change it announces was committed. State
changes lock the registration row (``select_for_update``): two concurrent offboardings of the
same registration are serialised, and the second one sees the first and is refused.
"""

from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.services import tenant_tokens_revoke
from events.services import event_publish
from sbt_site.errors import Conflict, InvalidInput, NotFound
from tenants.models import Tenant, TenantRegistration
from tenants.selectors import parse_uuid
from tenants.wire import (
    failure_report_merge,
    registration_fields_from_wire,
    registration_to_wire,
    tenant_fields_from_wire,
    tenant_to_wire,
)

Status = TenantRegistration.Status

# Which status a registration may move to, by (offboarded?, current status). Repeating the
# current status is allowed so that an application plane may report the same result twice.
ALLOWED_TRANSITIONS: dict[tuple[bool, str], set[str]] = {
    (False, Status.IN_PROGRESS): {Status.IN_PROGRESS, Status.CREATED, Status.FAILED},
    (False, Status.FAILED): {Status.IN_PROGRESS, Status.CREATED, Status.FAILED},
    (False, Status.CREATED): {Status.CREATED},
    (True, Status.DELETING): {Status.DELETING, Status.DELETED, Status.FAILED},
    (True, Status.FAILED): {Status.DELETING, Status.DELETED, Status.FAILED},
    (True, Status.DELETED): {Status.DELETED},
}

# Application-plane outcome -> (status it leads to, whether it belongs to offboarding)
JOB_OUTCOMES: dict[str, tuple[str, bool]] = {
    "provisionSuccess": (Status.CREATED, False),
    "provisionFailure": (Status.FAILED, False),
    "deprovisionSuccess": (Status.DELETED, True),
    "deprovisionFailure": (Status.FAILED, True),
}


def _registration_locked(registration_id, client_tenant_id: UUID | None = None) -> TenantRegistration:
    parsed = parse_uuid(registration_id)
    registration = None
    if parsed:
        registrations = TenantRegistration.objects.select_for_update().select_related("tenant")
        if client_tenant_id is not None:
            registrations = registrations.filter(tenant_id=client_tenant_id)
        registration = registrations.filter(pk=parsed).first()
    if registration is None:
        raise NotFound(f"Tenant registration not found for id {registration_id}")
    return registration


def _tenant_locked(tenant_id) -> Tenant:
    parsed = parse_uuid(tenant_id)
    tenant = Tenant.objects.select_for_update().filter(pk=parsed).first() if parsed else None
    if tenant is None:
        raise NotFound(f"Tenant {tenant_id} not found.")
    return tenant


NAME_CONSTRAINT = "tenant_name_unique_while_not_deleted"


def _tenant_write(tenant: Tenant) -> None:
    """Save ``tenant``, whose name must be free among tenants not offboarded or deleted: it is a
    public lookup key (tenant config by name or Origin), so a second tenant of a name is a 409."""
    taken = Conflict(f"A tenant named {tenant.name} already exists", code="tenant_name_taken")
    live = Tenant.objects.filter(name__iexact=tenant.name, deleted__isnull=True).exclude(pk=tenant.pk)
    if tenant.name and tenant.deleted is None and live.exists():
        raise taken
    try:
        with transaction.atomic():
            tenant.save()
    except IntegrityError as exc:  # a concurrent request took the name between the check and the save
        if NAME_CONSTRAINT in str(exc):
            raise taken from None
        raise


def _tenant_save(tenant: Tenant) -> None:
    """Save a (locked) tenant; when this deactivates it (deactivate, offboard, delete, or
    ``sbtaws_active: false`` in its data), its clients and users lose their tokens at once."""
    was_active = Tenant.objects.filter(pk=tenant.pk).values_list("active", flat=True).first()
    _tenant_write(tenant)
    if was_active and not tenant.active:
        tenant_tokens_revoke(tenant_id=tenant.pk)


def _apply_fields(row, columns: dict, free_form: dict) -> None:
    for column, value in columns.items():
        setattr(row, column, value)
    if free_form:
        row.data = {**row.data, **free_form}


def _check_transition(registration: TenantRegistration, target: str, *, what: str) -> None:
    offboarded = registration.offboarded is not None
    if target not in ALLOWED_TRANSITIONS.get((offboarded, registration.status), set()):
        state = "offboarded" if offboarded else "onboarding"
        raise Conflict(
            f"{what} does not apply: tenant registration {registration.pk} is {state} "
            f"with status '{registration.status}'",
            code="illegal_transition",
        )


def _snapshot(row) -> dict:
    """The row's values, but for the timestamp a save sets."""
    return {
        field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields if field.attname != "modified"
    }


def _registration_merge(
    registration: TenantRegistration,
    *,
    status: str | None,
    reason: str | None,
    columns: dict,
    free_form: dict,
    tenant_fields: tuple[dict, dict] | None,
) -> None:
    """Apply a status (already checked against the flow) and merged keys to a locked
    registration, and ``tenant_fields`` (columns, free-form keys) to its tenant. Only what
    changed is written: an application plane's retried report (an API destination retries,
    a ScriptJob may report twice) is then no write at all, and ``modified`` keeps its time."""
    before = _snapshot(registration)
    if status is not None:
        _set_status(registration, status, reason)
    _apply_fields(registration, columns, free_form)
    if _snapshot(registration) != before:
        registration.save()
    if tenant_fields is not None:
        tenant = registration.tenant
        before = _snapshot(tenant)
        _apply_fields(tenant, *tenant_fields)
        if _snapshot(tenant) != before:
            _tenant_save(tenant)


def _set_status(registration: TenantRegistration, status: str, reason: str | None) -> None:
    registration.status = status
    registration.status_reason = (reason or "")[:4000] if status == Status.FAILED else ""


def _lifecycle_detail(registration: TenantRegistration) -> dict:
    """Tenant and registration merged, as SBT sends with offboardingRequest (and activate/deactivate)."""
    return {**tenant_to_wire(registration.tenant), **registration_to_wire(registration)}


@transaction.atomic
def tenant_registration_create(
    *, tenant_data: dict | None = None, registration_data: dict | None = None
) -> TenantRegistration:
    """Onboard a tenant: the tenant, its registration and the onboardingRequest, all or nothing."""
    tenant_data = {} if tenant_data is None else tenant_data
    registration_data = {} if registration_data is None else registration_data
    tenant_columns, tenant_free_form = tenant_fields_from_wire(tenant_data)
    registration_columns, registration_free_form = registration_fields_from_wire(registration_data)
    # A new registration starts "In progress" (SBT's CLI says so explicitly); any later status is
    # the application plane's to report.
    if registration_columns.pop("status", Status.IN_PROGRESS) != Status.IN_PROGRESS:
        message = "a new registration starts 'In progress'; its status changes when provisioning reports back"
        raise InvalidInput(
            f"body.tenantRegistrationData.registrationStatus: {message}",
            detail=[
                {"loc": ["body", "tenantRegistrationData", "registrationStatus"], "msg": message, "type": "invalid"}
            ],
        )
    registration_columns.pop("status_reason", None)

    tenant = Tenant(data=tenant_free_form, **tenant_columns)
    _tenant_write(tenant)
    registration = TenantRegistration(tenant=tenant, data=registration_free_form)
    registration.save()
    event_publish(
        detail_type="onboardingRequest",
        detail={
            **registration_data,
            **tenant_data,
            "tenantId": str(tenant.pk),
            "tenantRegistrationId": str(registration.pk),
        },
    )
    return registration


@transaction.atomic
def tenant_registration_update(
    *,
    registration_id,
    registration_data: dict | None = None,
    tenant_data: dict | None = None,
    tenant_status: str | None = None,
    client_tenant_id: UUID | None = None,
) -> tuple[TenantRegistration, Tenant | None]:
    """Merge keys into a registration and its tenant (PATCH). Returns the tenant only when
    ``tenant_data`` was given, as SBT does. A ``registrationStatus`` follows the status flow.

    ``tenant_status`` is the failure SBT's ScriptJob reports (its ``jobFailureStatus``,
    ``{"tenantStatus": "Failed to provision tenant."}``, PATCHed as is by SBT's API destination):
    the registration fails, with that reason. Repeating a status the registration has changes
    nothing but the keys merged, and publishes nothing (an API destination retries)."""
    registration = _registration_locked(registration_id, client_tenant_id)
    registration_columns, registration_free_form = registration_fields_from_wire(registration_data or {})
    tenant_columns, tenant_free_form = (None, None)
    if tenant_data is not None:
        tenant_columns, tenant_free_form = tenant_fields_from_wire(tenant_data)
    if tenant_status is not None:
        failure_report_merge(registration_columns, tenant_status)
    target = registration_columns.pop("status", None)
    if target is not None:
        _check_transition(registration, target, what=f"registrationStatus '{target}'")
    _registration_merge(
        registration,
        status=target,
        reason=registration_columns.pop("status_reason", None) if target is not None else None,
        columns=registration_columns,
        free_form=registration_free_form,
        tenant_fields=(tenant_columns, tenant_free_form) if tenant_data else None,
    )
    return registration, registration.tenant if tenant_data else None


@transaction.atomic
def tenant_registration_apply_job_output(
    *,
    registration_id,
    outcome: str,
    job_output: dict | None = None,
    reason: str | None = None,
    client_tenant_id: UUID | None = None,
) -> TenantRegistration:
    """Record what the application plane reports about a registration (provisionSuccess, ...).

    The job output's ``tenantData`` and ``tenantRegistrationData`` are merged as a PATCH would;
    the status moves as CONTRACT.md's status flow says, and a failure keeps its reason.
    """
    if outcome not in JOB_OUTCOMES:
        raise InvalidInput(f"Unknown outcome {outcome!r}: expected one of {', '.join(JOB_OUTCOMES)}")
    job_output = {} if job_output is None else job_output
    if not isinstance(job_output, dict):
        raise InvalidInput(
            "jobOutput must be a JSON object",
            detail=[{"loc": ["detail", "jobOutput"], "msg": "must be a JSON object", "type": "type_error"}],
        )
    loc = ("detail", "jobOutput")
    registration_columns, registration_free_form = registration_fields_from_wire(
        job_output.get("tenantRegistrationData") or {}, loc=(*loc, "tenantRegistrationData")
    )
    tenant_data = job_output.get("tenantData")
    tenant_columns, tenant_free_form = tenant_fields_from_wire(tenant_data or {}, loc=(*loc, "tenantData"))
    # The outcome decides the status; a status inside the job output would contradict it.
    registration_columns.pop("status", None)
    registration_columns.pop("status_reason", None)

    registration = _registration_locked(registration_id, client_tenant_id)
    target, _ = JOB_OUTCOMES[outcome]
    _check_transition(registration, target, what=outcome)
    _registration_merge(
        registration,
        status=target,
        reason=reason,
        columns=registration_columns,
        free_form=registration_free_form,
        tenant_fields=(tenant_columns, tenant_free_form) if tenant_data else None,
    )
    return registration


@transaction.atomic
def tenant_registration_delete(
    *, registration_id, client_tenant_id: UUID | None = None, repeat_ok: bool = False
) -> TenantRegistration:
    """Offboard: mark registration and tenant inactive, status ``deleting``, emit offboardingRequest.

    Offboarding an offboarded registration is a Conflict, unless ``repeat_ok``: then it returns
    the registration as it is and publishes nothing. The API asks for that, as SBT answers a
    second DELETE with 200 and an EventBridge API destination retries what answers 409; the
    operator's faces (admin, command) are told instead.
    """
    registration = _registration_locked(registration_id, client_tenant_id)
    if registration.offboarded is not None and repeat_ok:
        return registration
    if registration.offboarded is not None:
        raise Conflict(
            f"Tenant registration {registration.pk} is already offboarded (status '{registration.status}')",
            code="already_offboarded",
        )
    registration.offboarded = timezone.now()
    registration.active = False
    _set_status(registration, Status.DELETING, None)
    registration.save()
    registration.tenant.active = False
    registration.tenant.deleted = registration.offboarded
    _tenant_save(registration.tenant)
    event_publish(detail_type="offboardingRequest", detail=_lifecycle_detail(registration))
    return registration


def _set_active(registration_id, *, active: bool, client_tenant_id: UUID | None) -> TenantRegistration:
    verb = "activated" if active else "deactivated"
    registration = _registration_locked(registration_id, client_tenant_id)
    if registration.offboarded is not None:
        raise Conflict(
            f"Tenant registration {registration.pk} is offboarded (status '{registration.status}') "
            f"and cannot be {verb}",
            code="offboarded",
        )
    if registration.active == active and registration.tenant.active == active:
        raise Conflict(f"Tenant registration {registration.pk} is already {verb}", code=f"already_{verb}")
    registration.active = registration.tenant.active = active
    registration.save()
    _tenant_save(registration.tenant)
    event_publish(
        detail_type="activateRequest" if active else "deactivateRequest", detail=_lifecycle_detail(registration)
    )
    return registration


@transaction.atomic
def tenant_registration_activate(*, registration_id, client_tenant_id: UUID | None = None) -> TenantRegistration:
    """Re-activate a deactivated (not offboarded) tenant and emit activateRequest (beyond SBT)."""
    return _set_active(registration_id, active=True, client_tenant_id=client_tenant_id)


@transaction.atomic
def tenant_registration_deactivate(*, registration_id, client_tenant_id: UUID | None = None) -> TenantRegistration:
    """Suspend a tenant without offboarding it and emit deactivateRequest (beyond SBT)."""
    return _set_active(registration_id, active=False, client_tenant_id=client_tenant_id)


def _registration_of(tenant_id) -> TenantRegistration:
    parsed = parse_uuid(tenant_id)
    registration = TenantRegistration.objects.filter(tenant_id=parsed).first() if parsed else None
    if registration is None:
        if parsed is None or not Tenant.objects.filter(pk=parsed).exists():
            raise NotFound(f"Tenant {tenant_id} not found.")
        raise Conflict(
            f"Tenant {tenant_id} has no registration (it was created with POST /tenants): "
            f"deactivate it with DELETE /tenants/{tenant_id} instead",
            code="no_registration",
        )
    return registration


def tenant_offboard(*, tenant_id) -> TenantRegistration:
    """Offboard a tenant by its id (admin, ``tenant_offboard``): the same as deleting its registration."""
    return tenant_registration_delete(registration_id=_registration_of(tenant_id).pk)


def tenant_activate(*, tenant_id) -> TenantRegistration:
    return tenant_registration_activate(registration_id=_registration_of(tenant_id).pk)


def tenant_deactivate(*, tenant_id) -> TenantRegistration:
    return tenant_registration_deactivate(registration_id=_registration_of(tenant_id).pk)


@transaction.atomic
def tenant_create(*, tenant_data: dict) -> Tenant:
    """A tenant without a registration (SBT's POST /tenants, used by its own services)."""
    columns, free_form = tenant_fields_from_wire(tenant_data)
    tenant = Tenant(data=free_form, **columns)
    _tenant_write(tenant)
    return tenant


@transaction.atomic
def tenant_update(*, tenant_id, tenant_data: dict) -> Tenant:
    """Merge keys into a tenant (PUT /tenants/{id} is a partial merge in SBT)."""
    columns, free_form = tenant_fields_from_wire(tenant_data)
    tenant = _tenant_locked(tenant_id)
    _apply_fields(tenant, columns, free_form)
    _tenant_save(tenant)
    return tenant


@transaction.atomic
def tenant_delete(*, tenant_id) -> Tenant:
    """Soft-delete a tenant (``sbtaws_active: false``), as SBT's DELETE /tenants/{id}."""
    tenant = _tenant_locked(tenant_id)
    if not tenant.active:
        raise Conflict(f"Tenant {tenant.pk} is already inactive", code="already_inactive")
    tenant.active = False
    tenant.deleted = timezone.now()
    _tenant_save(tenant)
    return tenant
