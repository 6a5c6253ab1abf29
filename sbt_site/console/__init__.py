"""The operator console: the Django admin as the place operators run the SaaS from.

``apps.ConsoleAdminConfig`` makes ``site.ConsoleAdminSite`` the default admin site (so every
``admin.site.register`` / ``@admin.register`` keeps working), and that site adds what the stock
admin lacks: the overview dashboard as its first page (``dashboard``), navigation grouped by what
operators do (``navigation``), the usage explorer (``usage_explorer``), the tenant page's panels
and the webhook tooling (``tenant_page``, ``webhooks``; rendered by ``sbt_site.templatetags.console``).
Everything here reads through the apps' selectors and writes only through their services.
"""
