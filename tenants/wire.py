"""The SBT wire shape of tenants and registrations: how client keys map onto our columns.

A client sends free-form objects (``tenantData``, ``tenantRegistrationData``). The keys the
control plane reasons about become columns; every other key is kept in the row's ``data`` and
returned flattened beside them, as SBT returns its DynamoDB items. The same shape goes to the
API and into event details.
"""

import json
import math

from sbt_site import strict_json
from sbt_site.db import storable_text
from sbt_site.errors import InvalidInput
from tenants.models import Tenant, TenantRegistration

# Keys only the control plane may set: SBT lets a client overwrite them; we refuse (CONTRACT.md).
# ``created``/``modified`` are ours too: a client value would be shadowed by ours on the way out.
OWNED_KEYS = ("tenantId", "tenantRegistrationId", "sbtaws_active", "created", "modified")

# tenantData key -> Tenant column
TENANT_COLUMNS = {"tenantName": "name", "email": "email", "tier": "tier", "prices": "prices", "tenantConfig": "config"}
# tenantRegistrationData key -> TenantRegistration column
REGISTRATION_COLUMNS = {"registrationStatus": "status", "registrationStatusReason": "status_reason"}

_STRING_LIMITS = {"name": 255, "email": 254, "tier": 64}


def _error(loc: tuple, message: str, kind: str) -> InvalidInput:
    where = ".".join(str(part) for part in loc)
    return InvalidInput(f"{where}: {message}", detail=[{"loc": list(loc), "msg": message, "type": kind}])


def _refuse_unstorable(value, loc: tuple) -> None:
    """JSON allows ``\\u0000``, lone surrogates and ``1e400`` (infinity in Python); PostgreSQL's
    jsonb refuses them, so they are a 422 here rather than a 500 at save time."""
    if isinstance(value, float) and not math.isfinite(value):
        raise _error(loc, "number is out of range", "invalid_number")
    if isinstance(value, str):
        if not storable_text(value):
            raise _error(loc, "text may not contain NUL (\\u0000) or unpaired surrogate characters", "invalid_text")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not storable_text(key):
                raise _error(loc, "keys may not contain NUL (\\u0000) or unpaired surrogate characters", "invalid_text")
            _refuse_unstorable(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_unstorable(item, (*loc, index))


def _refuse_owned_keys(values: dict, loc: tuple) -> None:
    for key in OWNED_KEYS:
        if key in values:
            raise _error((*loc, key), f"{key} is set by the control plane and cannot be given", "owned_key")


def _structured(value, loc: tuple, *, empty):
    """A structured column's value as given, or parsed from the JSON string it arrived as.

    SBT's application plane reports its results as CodeBuild exported variables, which are
    strings (``"prices": "[{\\"id\\": ...}]"``, src/core-app-plane/script-job.ts), so a string
    holding JSON stands for that JSON; a blank one (a variable the script never set) for
    ``empty``. The caller then checks the shape; a string that is not JSON is refused here."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return empty
    try:
        parsed = strict_json.loads(value.encode())
    except ValueError as exc:
        raise _error(loc, f"a string here must hold JSON: {exc}", "json_invalid") from None
    _refuse_unstorable(parsed, loc)
    return parsed


def _validated_config(value, loc: tuple) -> dict | None:
    value = _structured(value, loc, empty=None)
    if value is not None and not isinstance(value, dict):
        raise _error(loc, "tenantConfig must be a JSON object (or a string holding one), or null", "type_error")
    return value


def _validated_prices(value, loc: tuple) -> list:
    value = _structured(value, loc, empty=[])
    if not isinstance(value, list):
        message = 'prices must be a list of {"id": "<price id>", "metricName": "<meter api name>"}'
        raise _error(loc, message, "type_error")
    for index, price in enumerate(value):
        if not isinstance(price, dict):
            raise _error((*loc, index), "a price must be an object with id and metricName", "type_error")
        for field in ("id", "metricName"):
            if not isinstance(price.get(field), str) or not price[field]:
                raise _error((*loc, index, field), f"{field} must be a non-empty string", "missing")
    return value


def tenant_fields_from_wire(tenant_data: dict, *, loc: tuple = ("body", "tenantData")) -> tuple[dict, dict]:
    """Split ``tenantData`` into (Tenant column values, free-form keys); refuses bad values (422)."""
    if not isinstance(tenant_data, dict):
        raise _error(loc, "must be a JSON object", "type_error")
    _refuse_unstorable(tenant_data, loc)
    _refuse_owned_keys(tenant_data, loc)
    columns, free_form = {}, {}
    for key, value in tenant_data.items():
        column = TENANT_COLUMNS.get(key)
        if column is None:
            free_form[key] = value
        elif column == "prices":
            columns[column] = _validated_prices(value, (*loc, key))
        elif column == "config":
            columns[column] = _validated_config(value, (*loc, key))
        else:
            if not isinstance(value, str):
                raise _error((*loc, key), f"{key} must be a string", "type_error")
            if len(value) > _STRING_LIMITS[column]:
                raise _error((*loc, key), f"{key} is longer than {_STRING_LIMITS[column]} characters", "too_long")
            columns[column] = value
    return columns, free_form


def registration_fields_from_wire(
    registration_data: dict, *, loc: tuple = ("body", "tenantRegistrationData")
) -> tuple[dict, dict]:
    """Split ``tenantRegistrationData`` into (TenantRegistration column values, free-form keys)."""
    if not isinstance(registration_data, dict):
        raise _error(loc, "must be a JSON object", "type_error")
    _refuse_unstorable(registration_data, loc)
    _refuse_owned_keys(registration_data, loc)
    columns, free_form = {}, {}
    for key, value in registration_data.items():
        column = REGISTRATION_COLUMNS.get(key)
        if column is None:
            free_form[key] = value
        elif column == "status":
            if value not in TenantRegistration.Status.values:
                allowed = ", ".join(TenantRegistration.Status.values)
                raise _error((*loc, key), f"registrationStatus must be one of: {allowed}", "enum")
            columns[column] = value
        else:
            if value is not None and not isinstance(value, str):
                raise _error((*loc, key), f"{key} must be a string", "type_error")
            columns[column] = value or ""
    return columns, free_form


def failure_report_merge(registration_columns: dict, tenant_status) -> None:
    """Fold ScriptJob's failure report (``tenantStatus``, a PATCH body key beside
    tenantRegistrationData) into the registration's columns: status failed, the report as its
    reason; a registrationStatus other than failed beside it contradicts it (422)."""
    loc = ("body", "tenantStatus")
    if not isinstance(tenant_status, str) or not tenant_status.strip():
        message = "tenantStatus must be a non-empty string (the reason provisioning failed)"
        raise _error(loc, message, "type_error")
    if registration_columns.get("status", TenantRegistration.Status.FAILED) != TenantRegistration.Status.FAILED:
        message = "tenantStatus reports a failure; registrationStatus says otherwise"
        raise _error(loc, message, "conflict")
    registration_columns["status"] = TenantRegistration.Status.FAILED
    registration_columns.setdefault("status_reason", tenant_status)


def tenant_to_wire(tenant: Tenant) -> dict:
    """A tenant as SBT returns it: free-form keys flattened beside the columns."""
    try:
        registration = tenant.registration
    except TenantRegistration.DoesNotExist:
        registration = None  # created through POST /tenants, not through a registration
    return _tenant_wire(tenant, registration.pk if registration else None)


def tenant_row_to_wire(row) -> dict:
    """``tenant_to_wire`` of a row of ``tenants.selectors.tenant_row_list``: the same JSON,
    without building the model instances."""
    return _tenant_wire(row, row.registration_id)


def _tenant_wire(tenant, registration_id) -> dict:
    # ``tenant`` is a Tenant or a row with its column names: both are read alike.
    return {
        **tenant.data,
        "tenantId": str(tenant.id),
        "tenantRegistrationId": str(registration_id) if registration_id else None,
        "sbtaws_active": tenant.active,
        "tenantName": tenant.name,
        "email": tenant.email,
        "tier": tenant.tier,
        "prices": tenant.prices,
        "tenantConfig": tenant.config,
        "created": tenant.created.isoformat(),
        "modified": tenant.modified.isoformat(),
    }


def registration_to_wire(registration: TenantRegistration) -> dict:
    """A registration as SBT returns it, plus ``registrationStatusReason`` (beyond SBT)."""
    return {
        **registration.data,
        "tenantRegistrationId": str(registration.pk),
        "tenantId": str(registration.tenant_id),
        "sbtaws_active": registration.active,
        "registrationStatus": registration.status,
        "registrationStatusReason": registration.status_reason or None,
        "created": registration.created.isoformat(),
        "modified": registration.modified.isoformat(),
    }


def config_document(config):
    """The tenant config as a JSON document: a string holding JSON is that JSON (as SBT stores it)."""
    if isinstance(config, str):
        try:
            return json.loads(config)
        except ValueError:
            return config
    return config
