"""REST authentication: a tenant API key as a bearer token, or an admin session of a tenant."""

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from djafka.models import ApiKey, Tenant


class TenantPrincipal:
    """Who is calling: a tenant, through a key or a tenant admin's session."""

    is_authenticated = True

    def __init__(self, tenant: Tenant, api_key: ApiKey | None = None, user: object = None):
        self.tenant = tenant
        self.api_key = api_key
        self.user = user

    def __str__(self) -> str:
        via = self.api_key.prefix if self.api_key else str(self.user)
        return f"{self.tenant.name} ({via})"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <prefix>.<secret>``."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[TenantPrincipal, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() != self.keyword.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header; send 'Authorization: Bearer <api key>'."
            )
        api_key = ApiKey.authenticate_token(header[1])
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return TenantPrincipal(api_key.tenant, api_key=api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class TenantSessionAuthentication(authentication.SessionAuthentication):
    """A logged-in tenant admin uses the API (and the browsable API) as their tenant."""

    def authenticate(self, request: Request) -> tuple[TenantPrincipal, None] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        membership = getattr(user, "tenant_membership", None)
        if membership is None or not membership.tenant.is_active:
            return None
        return TenantPrincipal(membership.tenant, user=user), None
