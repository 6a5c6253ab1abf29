"""The console's navigation: models grouped by what operators do, in the order they do it, and
the framework's own models (Groups, periodic-task schedules, OAuth grants and ID tokens, lockout
records) out of the way in "Advanced" at the end.

A model not listed goes to its app's group (``APP_GROUPS``), or to "Advanced" for a third-party
app. Add a model to a group by naming it (``app_label.modelname``) in ``GROUPS``.
"""

from django.urls import reverse

GROUPS = (
    ("tenants", "Tenants", ("tenants.tenant", "tenants.tenantregistration")),
    ("usage", "Usage", ("metering.meter", "metering.usageevent", "metering.meteringcustomer", "metering.rollupzone")),
    (
        "billing",
        "Billing",
        (
            "billing.billingcustomer",
            "billing.usagepush",
            "billing.webhookevent",
            "billing.billinguser",
            "billing.localbillingrecord",
        ),
    ),
    ("events", "Events", ("events.event", "events.delivery", "events.subscription", "events.handlerrun")),
    (
        "access",
        "Access",
        ("accounts.user", "accounts.oauthapplication", "oauth2_provider.accesstoken", "oauth2_provider.refreshtoken"),
    ),
)
APP_GROUPS = {"tenants": "tenants", "metering": "usage", "billing": "billing", "events": "events", "accounts": "access"}
ADVANCED = ("advanced", "Advanced")

# Console pages that are not models, listed first in their group when the operator sees the
# model the page reads (the page checks the same permission).
PAGES = {"usage": (("Usage explorer", "admin:console_usage", "metering.meter"),)}


def grouped_app_list(app_list: list[dict]) -> list[dict]:
    """The stock admin's ``app_list`` (apps with their models) regrouped into GROUPS + Advanced,
    in the same dict shape, so the stock templates (sidebar, app list) render it unchanged."""
    position = {
        label: (index, order) for index, (_, _, labels) in enumerate(GROUPS) for order, label in enumerate(labels)
    }
    slugs = [slug for slug, _, _ in GROUPS] + [ADVANCED[0]]
    names = {slug: name for slug, name, _ in GROUPS} | {ADVANCED[0]: ADVANCED[1]}
    members: dict[str, list[tuple]] = {slug: [] for slug in slugs}
    for app in app_list:
        for model in app["models"]:
            label = model["model"]._meta.label_lower
            if label in position:
                group_index, order = position[label]
                members[slugs[group_index]].append((order, model["name"], model))
            else:
                group = APP_GROUPS.get(app["app_label"], ADVANCED[0])
                members[group].append((len(position), model["name"], model))
    grouped = []
    for slug in slugs:
        models = [model for _, _, model in sorted(members[slug], key=lambda item: item[:2])]
        if not models:
            continue
        shown = {model["model"]._meta.label_lower for model in models}
        pages = [_page(name, url_name) for name, url_name, needs in PAGES.get(slug, ()) if needs in shown]
        grouped.append(
            {
                "name": names[slug],
                "app_label": slug,
                "app_url": next((model["admin_url"] for model in models if model.get("admin_url")), ""),
                "has_module_perms": True,
                "models": pages + models,
            }
        )
    return grouped


def _page(name: str, url_name: str) -> dict:
    """A console page in the shape of a model entry (no add link, view only)."""
    return {
        "name": name,
        "object_name": url_name.split(":")[-1],
        "perms": {"add": False, "change": False, "delete": False, "view": True},
        "admin_url": reverse(url_name),
        "add_url": None,
        "view_only": True,
    }
