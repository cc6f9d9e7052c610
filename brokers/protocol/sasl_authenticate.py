"""SaslAuthenticate (API key 36): check SASL/PLAIN credentials through the services seam.

PLAIN's message is authzid NUL username NUL password (RFC 4616). The username is a tenant's
API key name and the password its secret; BrokerServices.authenticate_plain decides. A failed
attempt answers SASL_AUTHENTICATION_FAILED and then closes the connection, as Kafka does.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.sasl_authenticate import v0, v1, v2

from .context import Connection, RequestContext
from .errors import ErrorCode
from .services import BrokerServices

API_KEY = 36
MIN_VERSION = 0
MAX_VERSION = 2

_RESPONSES: dict[int, Any] = {0: v0.response, 1: v1.response, 2: v2.response}
_NO_SESSION_LIFETIME = datetime.timedelta(0)  # no re-authentication required (KIP-368)


class PlainAuthenticationFailed(Exception):
    """The PLAIN message is malformed or its credentials are wrong."""


async def handle(ctx: RequestContext, request: Any) -> Any:
    connection = ctx.connection
    if connection.sasl_mechanism != "PLAIN" or connection.is_legacy_sasl:
        connection.close_after_response = True
        return _response(
            ctx.api_version,
            ErrorCode.illegal_sasl_state,
            "SaslAuthenticate before a SaslHandshake v1 selected a mechanism",
        )
    if connection.is_authenticated:
        return _response(ctx.api_version, ErrorCode.illegal_sasl_state, "already authenticated")
    try:
        await authenticate_plain(ctx.services, connection, request.auth_bytes)
    except PlainAuthenticationFailed as exc:
        connection.close_after_response = True
        return _response(ctx.api_version, ErrorCode.sasl_authentication_failed, str(exc))
    return _response(ctx.api_version, ErrorCode.none, None)


async def authenticate_plain(
    services: BrokerServices, connection: Connection, message: bytes
) -> None:
    """Authenticate `connection` from a PLAIN message, or raise PlainAuthenticationFailed.

    Also used for the legacy flow (SaslHandshake v0), where the message arrives as a raw frame.
    """
    parts = bytes(message).split(b"\x00")
    if len(parts) != 3:
        raise PlainAuthenticationFailed("Invalid SASL/PLAIN response: expected 3 tokens")
    try:
        authzid, username, password = (part.decode() for part in parts)
    except UnicodeDecodeError:
        raise PlainAuthenticationFailed("Invalid SASL/PLAIN response: not UTF-8") from None
    if not username:
        raise PlainAuthenticationFailed("Authentication failed: username not specified")
    if authzid and authzid != username:
        raise PlainAuthenticationFailed(
            "Authentication failed: Client requested an authorization id that is different "
            "from username"
        )
    principal = await services.authenticate_plain(username, password)
    if principal is None:
        raise PlainAuthenticationFailed("Authentication failed: Invalid username or password")
    connection.principal = principal


def error_response(version: int, request: Any, error_code: int) -> Any:
    return _response(version, error_code, None)


def _response(version: int, error_code: int, message: str | None) -> Any:
    kwargs: dict[str, Any] = {
        "error_code": ErrorCode(error_code),
        "error_message": message,
        "auth_bytes": b"",
    }
    if version >= 1:
        kwargs["session_lifetime"] = _NO_SESSION_LIFETIME
    return _RESPONSES[version].SaslAuthenticateResponse(**kwargs)
