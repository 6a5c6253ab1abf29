from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    """django.contrib.admin with the console's site as ``admin.site`` (Django's documented way to
    replace the default site: the ModelAdmins registered on ``admin.site`` need no change)."""

    default_site = "sbt_site.console.site.ConsoleAdminSite"
