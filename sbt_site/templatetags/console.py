"""The console's panels on the stock admin pages (tenant, delivery, subscription), rendered by
the change-form templates that sbt_site/templates/admin/<app>/<model>/ override. Thin: each tag
calls the console module that builds its context."""

from django import template
from django.utils import timezone

from sbt_site.console import tenant_page, webhooks

register = template.Library()


@register.inclusion_tag("console/tenant_panels.html", takes_context=True)
def console_tenant_panels(context, tenant):
    buttons = context.get("lifecycle_buttons", [])  # TenantAdmin.change_view: the steps open to this tenant
    return tenant_page.tenant_panels(tenant=tenant, buttons=buttons, now=timezone.now())


@register.inclusion_tag("console/delivery_panel.html", takes_context=True)
def console_delivery_panel(context, delivery):
    return {**webhooks.delivery_panel(delivery=delivery), "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("console/subscription_panel.html")
def console_subscription_panel(subscription):
    return webhooks.subscription_panel(subscription_id=subscription.pk, now=timezone.now())
