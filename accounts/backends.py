"""The authentication backend of every login page (the admin's, /o/login/)."""

from django.contrib.auth.backends import ModelBackend


class ActiveTenantModelBackend(ModelBackend):
    """Django's ModelBackend, refusing a user of an inactive (deactivated, offboarded, deleted)
    tenant as it refuses a disabled user: the login fails as a wrong password does, and a session
    opened before the tenant was deactivated counts as logged out (``get_user``). Reactivating
    the tenant lets its users log in again."""

    def user_can_authenticate(self, user):
        return super().user_can_authenticate(user) and user.tenant_active
