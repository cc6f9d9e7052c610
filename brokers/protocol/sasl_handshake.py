"""SaslHandshake (API key 17): pick the SASL mechanism; only PLAIN is offered.

v1 is followed by SaslAuthenticate requests (KIP-152). v0 is the legacy flow: the next frame
is a raw SASL token, not a Kafka request, which the server hands to sasl_authenticate.
"""

from __future__ import annotations

from typing import Any

from kio.schema.sasl_handshake import v0, v1

from .context import RequestContext
from .errors import ErrorCode

API_KEY = 17
MIN_VERSION = 0
MAX_VERSION = 1

MECHANISMS = ("PLAIN",)

_RESPONSES: dict[int, Any] = {0: v0.response, 1: v1.response}


async def handle(ctx: RequestContext, request: Any) -> Any:
    connection = ctx.connection
    # Kafka answers a handshake on a non-SASL listener, or a second one, with ILLEGAL_SASL_STATE.
    if not connection.requires_auth or connection.sasl_mechanism is not None:
        return error_response(ctx.api_version, request, ErrorCode.illegal_sasl_state)
    if request.mechanism not in MECHANISMS:
        connection.close_after_response = True
        return error_response(ctx.api_version, request, ErrorCode.unsupported_sasl_mechanism)
    connection.sasl_mechanism = request.mechanism
    connection.is_legacy_sasl = ctx.api_version == 0
    return _RESPONSES[ctx.api_version].SaslHandshakeResponse(
        error_code=ErrorCode.none, mechanisms=MECHANISMS
    )


def error_response(version: int, request: Any, error_code: int) -> Any:
    return _RESPONSES[version].SaslHandshakeResponse(
        error_code=ErrorCode(error_code), mechanisms=MECHANISMS
    )
