"""ApiVersions (API key 18): the APIs and version ranges this broker implements (KIP-35, KIP-511).

The list is the handler registry itself, so clients negotiate only what is implemented. A
request of a version newer than ours is answered by the server with a v0 body carrying
UNSUPPORTED_VERSION and this list (server.py), so the client can retry at our newest version.
"""

from __future__ import annotations

import re
from typing import Any

from kio.schema.api_versions import v0, v1, v2, v3, v4

from .context import RequestContext
from .errors import ErrorCode
from .registry import Registry
from .responses import NO_THROTTLE

API_KEY = 18
MIN_VERSION = 0
MAX_VERSION = 4

_RESPONSES: dict[int, Any] = {
    0: v0.response,
    1: v1.response,
    2: v2.response,
    3: v3.response,
    4: v4.response,
}

# KIP-511: what Kafka accepts as client software name and version (ApiVersionsRequest.isValid).
_SOFTWARE_PATTERN = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")


async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    if version >= 3:
        name, software_version = request.client_software_name, request.client_software_version
        if not (_is_valid_software(name) and _is_valid_software(software_version)):
            return error_response(version, request, ErrorCode.invalid_request)
        ctx.connection.client_software_name = name
        ctx.connection.client_software_version = software_version
    return build_response(version, ctx.registry, ErrorCode.none)


def _is_valid_software(value: str) -> bool:
    return _SOFTWARE_PATTERN.fullmatch(value) is not None


def error_response(version: int, request: Any, error_code: int) -> Any:
    module = _RESPONSES[version]
    kwargs: dict[str, Any] = {"error_code": ErrorCode(error_code), "api_keys": ()}
    if version >= 1:
        kwargs["throttle_time"] = NO_THROTTLE
    return module.ApiVersionsResponse(**kwargs)


def build_response(version: int, registry: Registry, error_code: int) -> Any:
    """The registry as an ApiVersionsResponse of `version` (v0 is also the KIP-511 fallback).

    No feature flags (KIP-584) are advertised: supported_features stays empty and the finalized
    features epoch -1, which tells clients to assume the classic protocols (no transaction
    version 2, no new group protocol), which is what we implement.
    """
    module = _RESPONSES[version]
    api_keys = tuple(
        module.ApiVersion(
            api_key=handler.api_key,
            min_version=handler.min_version,
            max_version=handler.max_version,
        )
        for handler in registry
    )
    kwargs: dict[str, Any] = {"error_code": ErrorCode(error_code), "api_keys": api_keys}
    if version >= 1:
        kwargs["throttle_time"] = NO_THROTTLE
    return module.ApiVersionsResponse(**kwargs)
