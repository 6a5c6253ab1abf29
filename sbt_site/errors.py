"""Domain errors raised by services and selectors.

A service never builds a response: it raises one of these with a stable ``code``, and the API's
exception handler (sbt_site.api.exceptions) turns it into CONTRACT.md's error envelope. The
admin and the management commands show ``message`` to the operator.
"""


class ServiceError(Exception):
    """Base class: ``message`` is shown to the client, ``code`` is machine-readable."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, detail: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.detail = detail

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the API sends with this error."""
        return {}


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Forbidden(ServiceError):
    """The caller is authenticated, but may not do this (its scopes, its tenant, its role)."""

    status_code = 403
    code = "forbidden"


class Conflict(ServiceError):
    """The request is valid but the current state forbids it (e.g. offboarding twice)."""

    status_code = 409
    code = "conflict"


class InvalidInput(ServiceError):
    """Input that passed the API's shape checks but breaks a business rule (422).

    ``detail`` follows CONTRACT.md: ``[{"loc": [...], "msg": "...", "type": "..."}]``.
    """

    status_code = 422
    code = "validation_error"


class TooManyRequests(ServiceError):
    """A limit was reached (a quota); ``retry_after``: the seconds until the request may pass."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ProviderError(ServiceError):
    """An external provider (Stripe, ...) failed; ``retryable`` tells whether to try again."""

    status_code = 502
    code = "provider_error"

    def __init__(self, message: str, *, retryable: bool, code: str | None = None):
        super().__init__(message, code=code)
        self.retryable = retryable


class ServiceUnavailable(ServiceError):
    """A dependency is briefly unavailable (the database dropped the connection, or no pooled
    connection freed up in time): not the request's fault, and worth retrying after
    ``retry_after`` seconds."""

    status_code = 503
    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: int = 1, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
