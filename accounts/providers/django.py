"""The built-in IAuth provider: Django users, tokens from django-oauth-toolkit."""

from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from accounts import tokens
from accounts.interface import AuthProvider, AuthUser, CreatedAdmin, UserPage
from accounts.models import OAuthApplication
from sbt_site.errors import Conflict, InvalidInput, NotFound
from tenants.models import Tenant

PAGE_TOKEN_SALT = "sbt.page.accounts.user"


def _auth_user(user) -> AuthUser:
    return AuthUser(
        user_name=user.username,
        email=user.email,
        user_role=user.role,
        enabled=user.is_active,
        status=user.status,
        tenant_id=user.tenant_id,
        created=user.date_joined,
        modified=user.modified,
    )


def _malformed_next_token() -> InvalidInput:
    return InvalidInput(
        "Request validation failed: query.next_token: next_token is malformed or not for this list",
        detail=[
            {"loc": ["query", "next_token"], "msg": "next_token is malformed or not for this list", "type": "invalid"}
        ],
    )


class DjangoAuthProvider(AuthProvider):
    """Users are ``accounts.User`` rows; ``enabled`` is ``is_active``; tokens live in DOT's tables."""

    def __init__(self, **options):
        self.options = options

    # --- configuration ----------------------------------------------------------------------
    @property
    def jwt_issuer(self) -> str:
        return tokens.jwt_issuer()

    @property
    def jwt_audience(self) -> str:
        return tokens.jwt_audience()

    @property
    def token_endpoint(self) -> str:
        return f"{settings.SBT_PUBLIC_URL}/o/token/"

    @property
    def well_known_endpoint_url(self) -> str:
        return f"{tokens.jwt_issuer()}/.well-known/openid-configuration"

    def _system_client_id(self, role: str) -> str | None:
        return OAuthApplication.objects.filter(system_role=role).values_list("client_id", flat=True).first()

    @property
    def user_client_id(self) -> str | None:
        return self._system_client_id(OAuthApplication.SystemRole.USER)

    @property
    def machine_client_id(self) -> str | None:
        return self._system_client_id(OAuthApplication.SystemRole.MACHINE)

    # --- users ------------------------------------------------------------------------------
    def _users(self, tenant_id: UUID | None):
        users = get_user_model().objects.all()
        return users.filter(tenant_id=tenant_id) if tenant_id is not None else users

    def _get(self, user_name: str, tenant_id: UUID | None, *, for_update: bool = False):
        users = self._users(tenant_id)
        if for_update:
            users = users.select_for_update()
        user = users.filter(username=user_name).first()
        if user is None:
            raise NotFound(f"User {user_name} not found.")
        return user

    def create_user(self, *, user_name: str, email: str, user_role: str, tenant_id: UUID | None) -> AuthUser:
        if tenant_id is not None and not Tenant.objects.filter(pk=tenant_id).exists():
            raise NotFound(f"Tenant not found for id {tenant_id}")
        User = get_user_model()
        user = User(username=user_name, email=email, role=user_role, tenant_id=tenant_id)
        user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            raise Conflict(f"User {user_name} already exists.", code="user_exists") from None
        return _auth_user(user)

    def fetch_user(self, *, user_name: str, tenant_id: UUID | None = None) -> AuthUser:
        return _auth_user(self._get(user_name, tenant_id))

    def fetch_all_users(self, *, limit: int, next_token: str | None, tenant_id: UUID | None = None) -> UserPage:
        users = self._users(tenant_id)
        if next_token:
            try:
                joined, pk = signing.loads(next_token, salt=PAGE_TOKEN_SALT)
                joined = parse_datetime(joined)
                pk = int(pk)
            except (signing.BadSignature, TypeError, ValueError):
                raise _malformed_next_token() from None
            if joined is None:
                raise _malformed_next_token()
            users = users.filter(Q(date_joined__gt=joined) | Q(date_joined=joined, pk__gt=pk))
        rows = list(users.order_by("date_joined", "pk")[: limit + 1])
        page, more = rows[:limit], len(rows) > limit
        token = None
        if more:
            last = page[-1]
            token = signing.dumps([last.date_joined.isoformat(), last.pk], salt=PAGE_TOKEN_SALT, compress=True)
        return UserPage(users=[_auth_user(user) for user in page], next_token=token)

    def update_user(
        self, *, user_name: str, email: str | None = None, user_role: str | None = None, tenant_id: UUID | None = None
    ) -> AuthUser:
        user = self._get(user_name, tenant_id, for_update=True)
        if email is not None:
            user.email = email
        if user_role is not None:
            user.role = user_role
        user.save(update_fields=["email", "role", "modified"])
        return _auth_user(user)

    def delete_user(self, *, user_name: str, tenant_id: UUID | None = None) -> AuthUser:
        user = self._get(user_name, tenant_id, for_update=True)
        deleted = _auth_user(user)
        user.delete()  # its tokens, refresh tokens and grants go with it (CASCADE)
        return deleted

    def disable_user(self, *, user_name: str, tenant_id: UUID | None = None) -> AuthUser:
        user = self._get(user_name, tenant_id, for_update=True)
        user.is_active = False
        user.save(update_fields=["is_active", "modified"])
        self._revoke_tokens(user)
        return _auth_user(user)

    def enable_user(self, *, user_name: str, tenant_id: UUID | None = None) -> AuthUser:
        user = self._get(user_name, tenant_id, for_update=True)
        user.is_active = True
        user.save(update_fields=["is_active", "modified"])
        return _auth_user(user)

    def revoke_user_tokens(self, *, user_name: str) -> None:
        self._revoke_tokens(self._get(user_name, None, for_update=True))

    def revoke_tenant_tokens(self, *, tenant_id: UUID) -> None:
        self._revoke(Q(user__tenant_id=tenant_id) | Q(application__tenant_id=tenant_id))

    @classmethod
    def _revoke_tokens(cls, user) -> None:
        cls._revoke(Q(user=user))

    @staticmethod
    def _revoke(holders: Q) -> None:
        """Revoke everything ``holders`` hold: refresh tokens (kept as revoked tombstones, so a
        replay is detected), access tokens and unexchanged authorization codes."""
        now = timezone.now()
        get_refresh_token_model().objects.filter(holders, revoked__isnull=True).update(
            revoked=now, updated=now, access_token=None
        )
        get_access_token_model().objects.filter(holders).delete()
        get_grant_model().objects.filter(holders).delete()

    def create_admin_user(self, *, name: str, email: str, role: str) -> CreatedAdmin:
        User = get_user_model()
        with transaction.atomic():
            user = User.objects.select_for_update().filter(username=name).first()
            created = user is None
            if created:
                user = User(username=name, email=email, role=role, is_staff=True, is_superuser=True)
                user.set_unusable_password()
                user.save()
        if user.has_usable_password():
            instructions = f"User {name} already has a password; change it with: manage.py changepassword {name}"
        else:
            instructions = f"Set the password with: manage.py changepassword {name}"
        return CreatedAdmin(user=_auth_user(user), created=created, password_instructions=instructions)
