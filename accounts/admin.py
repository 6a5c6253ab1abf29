from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from oauth2_provider.admin import AccessTokenAdmin as DotAccessTokenAdmin
from oauth2_provider.admin import ApplicationAdmin as DotApplicationAdmin
from oauth2_provider.admin import RefreshTokenAdmin as DotRefreshTokenAdmin

from accounts import services
from accounts.models import User
from sbt_site.errors import ServiceError


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "role", "tenant", "is_active", "is_staff", "date_joined")
    list_filter = ("role", "is_active", "is_staff", "tenant")
    list_select_related = ("tenant",)
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Control plane", {"fields": ("role", "tenant")}))
    actions = ("disable_users", "enable_users")

    # Edits in the change form that must end the user's sessions, as the API's do: its tokens
    # carry the old role's scopes and the old tenant, and a disabled user's tokens must stop.
    REVOKING_FIELDS = {"role", "tenant", "is_active"}

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        changed = self.REVOKING_FIELDS & set(form.changed_data)
        if change and changed:
            services.user_tokens_revoke(user_name=obj.username)
            fields = ", ".join(sorted(str(form.fields[name].label or name) for name in changed))
            self.message_user(request, f"{obj.username}'s tokens were revoked ({fields} changed).", messages.WARNING)

    def _apply(self, request, queryset, service, done: str):
        count = 0
        for user in queryset:
            try:
                service(user_name=user.username)
            except ServiceError as exc:
                self.message_user(request, f"{user.username}: {exc.message}", messages.ERROR)
            else:
                count += 1
        self.message_user(request, f"{done} {count} user(s).")

    @admin.action(description="Disable selected users (blocks login, revokes their tokens)")
    def disable_users(self, request, queryset):
        self._apply(request, queryset, services.user_disable, "Disabled")

    @admin.action(description="Enable selected users")
    def enable_users(self, request, queryset):
        self._apply(request, queryset, services.user_enable, "Enabled")


class OAuthApplicationAdmin(DotApplicationAdmin):
    """OAuth clients with the scopes they may be granted and the tenant they are bound to."""

    list_display = ("name", "client_id", "client_type", "authorization_grant_type", "allowed_scopes", "tenant")
    list_filter = ("client_type", "authorization_grant_type", "system_role", "tenant")
    list_select_related = ("tenant",)
    search_fields = ("name", "client_id")
    raw_id_fields = ("user", "tenant")

    # Tokens carry the scopes and tenant they were issued with (in the database and in the JWT an
    # application plane verifies offline): a change to either, or a new secret, revokes them.
    REVOKING_FIELDS_COLUMNS = ("allowed_scopes", "tenant_id", "client_secret")

    def save_model(self, request, obj, form, change):
        # Compared with the stored row, not form.changed_data: fields with a callable default
        # (client_id, client_secret) always count as changed when the form's hidden initial
        # values are missing.
        before = type(obj).objects.filter(pk=obj.pk).values(*self.REVOKING_FIELDS_COLUMNS).first() if change else None
        super().save_model(request, obj, form, change)
        after = {column: getattr(obj, column) for column in self.REVOKING_FIELDS_COLUMNS}
        changed = {column.removesuffix("_id") for column in after if before and before[column] != after[column]}
        if changed:
            services.oauth_client_tokens_revoke(application=obj)
            fields = ", ".join(sorted(str(getattr(form.fields.get(name), "label", None) or name) for name in changed))
            self.message_user(request, f"The tokens of {obj.name!r} were revoked ({fields} changed).", messages.WARNING)


class AccessTokenAdmin(DotAccessTokenAdmin):
    """Read-only: tokens are issued by the OAuth flows; the revoke action is the only change."""

    list_display = ("pk", "application", "user", "scope", "expires")

    def has_change_permission(self, request, obj=None):
        return False


class RefreshTokenAdmin(DotRefreshTokenAdmin):
    list_display = ("pk", "application", "user", "revoked")

    def has_change_permission(self, request, obj=None):
        return False
