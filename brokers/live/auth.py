"""Who a live-feed websocket acts for: a tenant, from an API key or an admin's session.

In order of precedence:

1. ``Authorization: Bearer <api key>`` header (clients that can set headers on the upgrade).
2. ``?api_key=<api key>`` query parameter (browsers cannot set headers on a websocket).
3. The Django admin session cookie (``AuthMiddlewareStack``): a tenant admin acts for their
   tenant; an operator (staff user without a tenant) names one with ``?tenant=<name>``.
   A session is only taken from the site's own pages: a browser's ``Origin`` must name the
   host it connects to, so another site cannot ride a logged-in admin's cookie.

A socket that is none of these is accepted and closed at once with code 4401 (4403 when the
session is valid but may not act for a tenant), so that clients can read why.
"""

from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from djafka.models import ApiKey, Tenant

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


@dataclass(frozen=True, slots=True)
class Verdict:
    tenant: Tenant | None
    close_code: int = 0
    reason: str = ""


def _headers(scope: dict) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}


def _query(scope: dict) -> dict[str, str]:
    parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {name: values[-1] for name, values in parsed.items()}


def _is_same_origin(headers: dict[str, str]) -> bool:
    origin = headers.get("origin")
    if origin is None:
        return True  # not a browser: no cookie of a victim to ride on
    return urlparse(origin).netloc == headers.get("host", "")


def resolve_tenant(scope: dict) -> Verdict:
    """The tenant this socket acts for (blocking: it reads the database)."""
    headers, query = _headers(scope), _query(scope)
    token = None
    authorization = headers.get("authorization", "").split()
    if len(authorization) == 2 and authorization[0].lower() == "bearer":
        token = authorization[1]
    elif query.get("api_key"):
        token = query["api_key"]
    if token is not None:
        api_key = ApiKey.authenticate_token(token)
        if api_key is None:
            return Verdict(None, CLOSE_UNAUTHENTICATED, "Unknown or revoked API key.")
        return Verdict(api_key.tenant)

    user = scope.get("user")
    if user is None or not user.is_authenticated or not user.is_active:
        return Verdict(None, CLOSE_UNAUTHENTICATED, "Send an API key or log in.")
    if not _is_same_origin(headers):
        return Verdict(None, CLOSE_FORBIDDEN, "A session is only taken from this site's pages.")
    membership = getattr(user, "tenant_membership", None)
    if membership is not None:
        tenant = membership.tenant
    elif user.is_staff:
        tenant = Tenant.objects.filter(name=query.get("tenant", "")).first()
        if tenant is None:
            return Verdict(None, CLOSE_FORBIDDEN, "Operators name a tenant: ?tenant=<name>.")
    else:
        return Verdict(None, CLOSE_FORBIDDEN, "This user is no tenant's admin.")
    if not tenant.is_active:
        return Verdict(None, CLOSE_FORBIDDEN, "This tenant is inactive.")
    return Verdict(tenant)
