from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from oauth2_provider.admin import AccessTokenAdmin as DotAccessTokenAdmin
from oauth2_provider.admin import ApplicationAdmin as DotApplicationAdmin
from oauth2_provider.admin import GrantAdmin as DotGrantAdmin
from oauth2_provider.admin import IDTokenAdmin as DotIDTokenAdmin
from oauth2_provider.admin import RefreshTokenAdmin as DotRefreshTokenAdmin

from accounts import services
from accounts.models import OAuthApplication, User
from accounts.scopes import INTROSPECTION_SCOPE
from audit.context import reason_given
from sbt_site.conf import SCOPE_DESCRIPTIONS
from sbt_site.console_confirm import action_confirmation, action_confirmed, posted_reason
from sbt_site.console_forms import CreatedByServiceForm
from sbt_site.errors import ServiceError

# Columns the user services own (POST/PUT /users, enable/disable): the admin's forms send them
# there; the other columns (names, staff and superuser flags, groups, permissions) are Django's
# own operator privileges, which no service owns, saved by the admin as Django saves them.
SERVICE_COLUMNS = ("email", "role", "is_active")


class UserAddForm(CreatedByServiceForm):
    """POST /users from the console: the same service, the same refusals (a taken name, a tenant
    role without a tenant). The user has no password, as one created over the API; an operator
    sets one with "Change password" when the user needs to log in here."""

    class Meta:
        model = User
        fields = ("username", "email", "role", "tenant")

    def create(self, cleaned):
        tenant = cleaned.get("tenant")
        created = services.user_create(
            user_name=cleaned["username"],
            email=cleaned.get("email") or "",
            user_role=cleaned.get("role") or "",
            tenant_id=tenant.pk if tenant else None,
        )
        return User.objects.get(username=created.user_name)


class UserChangeForm(DjangoUserAdmin.form):
    """Email and role through ``user_update`` (a new role revokes the user's tokens), the active
    flag through ``user_enable`` / ``user_disable``, as the API's routes do."""

    def clean(self):
        cleaned = super().clean()
        if self.errors or self.instance.pk is None:
            return cleaned
        name = self.instance.username
        try:
            changes = {"email": "email", "role": "user_role"}
            update = {keyword: cleaned.get(field) for field, keyword in changes.items() if field in self.changed_data}
            if update:
                services.user_update(user_name=name, **update)
            if "is_active" in self.changed_data:
                (services.user_enable if cleaned["is_active"] else services.user_disable)(user_name=name)
        except ServiceError as error:
            self.add_error(None, error.message)
        return cleaned


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserAddForm
    add_fieldsets = ((None, {"fields": ("username", "email", "role", "tenant")}),)
    list_display = ("username", "email", "role", "tenant", "is_active", "is_staff", "date_joined")
    list_filter = ("role", "is_active", "is_staff", "tenant")
    list_select_related = ("tenant",)
    date_hierarchy = "date_joined"
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Control plane", {"fields": ("role", "tenant")}))
    actions = ("disable_users", "enable_users")

    # Edits that end the user's sessions, as the API's do: its tokens carry the old role's scopes
    # and the old tenant, and a disabled user's tokens must stop (the services revoke them for a
    # role or active change; a tenant move, which the API does not offer, revokes here).
    REVOKING_FIELDS = {"role", "tenant", "is_active"}

    def save_model(self, request, obj, form, change):
        if not change:
            return  # created by user_create when the form was validated
        own = [name for name in form.changed_data if name not in SERVICE_COLUMNS and name in form.fields]
        columns = [name for name in own if name not in ("groups", "user_permissions")]
        if columns:
            obj.save(update_fields=columns)
        if "tenant" in columns:
            services.user_tokens_revoke(user_name=obj.username)
        changed = self.REVOKING_FIELDS & set(form.changed_data)
        if changed and not (changed == {"is_active"} and obj.is_active):
            fields = ", ".join(sorted(str(form.fields[name].label or name) for name in changed))
            self.message_user(request, f"{obj.username}'s tokens were revoked ({fields} changed).", messages.WARNING)

    def delete_model(self, request, obj):
        services.user_delete(user_name=obj.username)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            services.user_delete(user_name=user.username)

    def _apply(self, request, queryset, service, done: str):
        count = 0
        for user in queryset:
            try:
                with reason_given(posted_reason(request)):
                    service(user_name=user.username)
            except ServiceError as exc:
                self.message_user(request, f"{user.username}: {exc.message}", messages.ERROR)
            else:
                count += 1
        self.message_user(request, f"{done} {count} user(s).")

    @admin.action(description="Disable selected users (blocks login, revokes their tokens)…")
    def disable_users(self, request, queryset):
        if not action_confirmed(request):
            return action_confirmation(
                self, request, queryset, title="Disable the selected users?", button="Yes, disable",
                consequences=[
                    "They can no longer log in, and every token they hold is revoked at once.",
                    "Enabling them again lets them log in; the revoked tokens stay revoked.",
                ],
            )  # fmt: skip
        self._apply(request, queryset, services.user_disable, "Disabled")
        return None

    @admin.action(description="Enable selected users")
    def enable_users(self, request, queryset):
        self._apply(request, queryset, services.user_enable, "Enabled")


class OAuthClientAddForm(CreatedByServiceForm):
    """A machine (client-credentials) client, as `oauth_client_create` makes it: its secret is
    shown once and stored hashed. A client of another kind (authorization code, redirect URIs)
    is the user client that `user_client_create` maintains."""

    scopes = forms.MultipleChoiceField(
        choices=[(scope, f"{scope}: {text}") for scope, text in SCOPE_DESCRIPTIONS.items()]
        + [(INTROSPECTION_SCOPE, f"{INTROSPECTION_SCOPE}: introspect every token")],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = OAuthApplication
        fields = ("name", "tenant")

    def create(self, cleaned):
        tenant = cleaned.get("tenant")
        client, self.secret = services.oauth_client_create(
            name=cleaned["name"], scopes=cleaned["scopes"], tenant_id=tenant.pk if tenant else None
        )
        return client


class OAuthApplicationAdmin(DotApplicationAdmin):
    """OAuth clients with the scopes they may be granted and the tenant they are bound to."""

    add_fields = ("name", "scopes", "tenant")

    def get_form(self, request, obj=None, change=False, **kwargs):
        return OAuthClientAddForm if obj is None else super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        return [(None, {"fields": self.add_fields})] if obj is None else super().get_fieldsets(request, obj)

    list_display = ("name", "client_id", "client_type", "authorization_grant_type", "allowed_scopes", "tenant")
    list_filter = ("client_type", "authorization_grant_type", "system_role", "tenant")
    list_select_related = ("tenant",)
    search_fields = ("name", "client_id")
    raw_id_fields = ("user", "tenant")

    # Tokens carry the scopes and tenant they were issued with (in the database and in the JWT an
    # application plane verifies offline): a change to either, or a new secret, revokes them.
    REVOKING_FIELDS_COLUMNS = ("allowed_scopes", "tenant_id", "client_secret")

    def save_model(self, request, obj, form, change):
        if not change:  # created by oauth_client_create when the form was validated
            message = f"Client secret of {obj.name!r} (shown only now, stored hashed): {form.secret}"
            self.message_user(request, message, messages.WARNING)
            return
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


class IssuedByTheOAuthFlows:
    """Tokens, grants and ID tokens are issued by the OAuth flows only: never added or edited
    here. Tokens are revoked with django-oauth-toolkit's action, never deleted."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AccessTokenAdmin(IssuedByTheOAuthFlows, DotAccessTokenAdmin):
    list_display = ("pk", "application", "user", "scope", "expires")


class RefreshTokenAdmin(IssuedByTheOAuthFlows, DotRefreshTokenAdmin):
    list_display = ("pk", "application", "user", "revoked")


class GrantAdmin(IssuedByTheOAuthFlows, DotGrantAdmin):
    pass


class IDTokenAdmin(IssuedByTheOAuthFlows, DotIDTokenAdmin):
    pass
