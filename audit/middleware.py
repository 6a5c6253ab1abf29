from audit.context import acting_for_request


class AuditActorMiddleware:
    """Every change made while serving a request is recorded with that request's caller (after
    ``AuthenticationMiddleware``; DRF fills in the API's caller later, see audit.context)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with acting_for_request(request):
            return self.get_response(request)
