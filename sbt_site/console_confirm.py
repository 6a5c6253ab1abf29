"""The console's confirmation page for actions that end something (offboard, deactivate, cancel
usage, archive, disable): Django's own pattern for "Delete selected", an intermediate page that
says what will happen and posts the same selection back with ``post=yes``.

Both shapes use it: a bulk action on a list (``action_confirmed``) and a button on one object's
page (``object_confirmation``), each with an optional reason that the audit log keeps.
"""

from django.contrib.admin import helpers
from django.template.response import TemplateResponse

TEMPLATE = "admin/confirm_action.html"


def action_confirmed(request) -> bool:
    return request.POST.get("post") == "yes"


def posted_reason(request) -> str:
    return request.POST.get("reason", "").strip()[:1000]


def action_confirmation(
    modeladmin, request, queryset, *, title: str, consequences: list[str], button: str, with_reason: bool = True
) -> TemplateResponse:
    """The page a bulk action shows before it runs (the action runs when it is posted back)."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "objects": list(queryset[:200]),
        "more": max(queryset.count() - 200, 0),
        "consequences": consequences,
        "button": button,
        "with_reason": with_reason,
        "action": request.POST.get("action", ""),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "opts": modeladmin.model._meta,
        "cancel_url": request.get_full_path(),
    }
    return TemplateResponse(request, TEMPLATE, context)


def object_confirmation(
    modeladmin, request, obj, *, title: str, consequences: list[str], button: str, cancel_url: str
) -> TemplateResponse:
    """The page an object's lifecycle button shows before it runs (posted back to the same URL)."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "objects": [obj],
        "object": obj,
        "consequences": consequences,
        "button": button,
        "with_reason": True,
        "opts": modeladmin.model._meta,
        "cancel_url": cancel_url,
    }
    return TemplateResponse(request, TEMPLATE, context)
