"""Credentials the web tier uses to reach broker nodes on a tenant's behalf.

The web tier never holds a tenant's API key secret (only its hash is stored), yet REST produce
and consume must reach the broker nodes over the Kafka protocol as that tenant. It logs in with
SASL/PLAIN as ``__djafka_internal__/<tenant>`` and a password derived from SECRET_KEY, which
the web tier and the broker nodes share and clients never see.
"""

import hashlib
import hmac

from django.conf import settings

INTERNAL_USER_PREFIX = "__djafka_internal__/"


def internal_password(tenant: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"djafka-internal:{tenant}".encode(), hashlib.sha256).hexdigest()


def internal_credentials(tenant: str) -> tuple[str, str]:
    """SASL/PLAIN username and password acting for ``tenant``."""
    return INTERNAL_USER_PREFIX + tenant, internal_password(tenant)


def internal_tenant(username: str, password: str) -> str | None:
    """The tenant an internal login acts for, or None if it is not a valid internal login."""
    if not username.startswith(INTERNAL_USER_PREFIX):
        return None
    tenant = username[len(INTERNAL_USER_PREFIX) :]
    if tenant and hmac.compare_digest(password, internal_password(tenant)):
        return tenant
    return None
