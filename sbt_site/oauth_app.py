"""django-oauth-toolkit under a name an operator understands: the admin lists its models
(access, refresh and ID tokens, grants) under "OAuth tokens" rather than "Django OAuth Toolkit".

Same app name and label as DOT's own config, so nothing about its tables or migrations changes.
This module is not ``apps.py`` on purpose: Django picks an app's default config from there.
"""

from oauth2_provider.apps import DOTConfig


class OAuthTokensConfig(DOTConfig):
    verbose_name = "OAuth tokens"
