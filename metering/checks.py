"""System checks of metering (``manage.py check``, run at every start).

POST /usage is mostly answered without DRF (metering/api/fast.py), emulating the DRF classes
``UsageView`` runs with. A class added to the view or to REST_FRAMEWORK's defaults (a throttle,
another authentication) would apply to the requests DRF answers and silently not to the others:
this check refuses to start instead.
"""

from django.core import checks
from rest_framework.settings import api_settings
from rest_framework.views import APIView


def _effective(view: type[APIView], name: str):
    """``view.<name>`` as DRF resolves it now: set on the view (or a base of ours), else the
    REST_FRAMEWORK default (APIView binds the defaults when it is imported; read them afresh, so
    that overridden settings count)."""
    owner = next(klass for klass in view.__mro__ if name in vars(klass))
    value = getattr(api_settings, f"DEFAULT_{name.upper()}") if owner is APIView else getattr(view, name)
    return tuple(value) if isinstance(value, (list, tuple)) else value


def fast_ingest_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    from metering.api import fast
    from metering.api.views import UsageView

    differences = [
        f"{name} is {_effective(UsageView, name)!r}, the fast path emulates {emulated!r}"
        for name, emulated in fast.EMULATED.items()
        if _effective(UsageView, name) != emulated
    ]
    if UsageView.operations.get("POST") != fast.OPERATION:
        differences.append(
            f"POST is operation {UsageView.operations.get('POST')!r}, the fast path checks {fast.OPERATION!r}"
        )
    allow = ", ".join(UsageView().allowed_methods)
    if allow != fast.ALLOW:
        differences.append(f"Allow is {allow!r}, the fast path answers {fast.ALLOW!r}")
    if not differences:
        return []
    return [
        checks.Error(
            "POST /usage's fast path no longer does what its DRF view does: " + "; ".join(differences) + ".",
            hint="Make metering/api/fast.py emulate the new classes (EMULATED, and "
            "metering/tests/test_fast_ingest.py comparing its answers with DRF's), or change the view back.",
            obj=UsageView,
            id="metering.E001",
        )
    ]
