"""FindCoordinator (API key 10): which broker coordinates a group (or other coordinator key).

Versions 0-6; v4+ batches keys (KIP-699). GROUP keys get the broker the group coordinator
chooses among the live brokers; TRANSACTION keys answer COORDINATOR_NOT_AVAILABLE, because
transactions are not supported (yet), and SHARE keys INVALID_REQUEST (no share groups).
"""

from __future__ import annotations

from typing import Any

from .context import RequestContext
from .errors import ErrorCode
from .group_services import CoordinatorResult
from .responses import NO_THROTTLE, response_module

API_KEY = 10
MIN_VERSION = 0
MAX_VERSION = 6



async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    groups = ctx.services.groups
    key_type = request.key_type if version >= 1 else 0
    if version >= 4:
        results = [
            await groups.find_coordinator(ctx.principal, key_type, key)
            for key in request.coordinator_keys
        ]
    else:
        results = [await groups.find_coordinator(ctx.principal, key_type, request.key)]
    return _response(version, results)


def _response(version: int, results: list[CoordinatorResult]) -> Any:
    types = response_module(API_KEY, version)
    if version >= 4:
        return types.FindCoordinatorResponse(
            throttle_time=NO_THROTTLE,
            coordinators=tuple(
                types.Coordinator(
                    key=r.key,
                    node_id=r.node_id,
                    host=r.host,
                    port=r.port,
                    error_code=ErrorCode(r.error_code),
                    error_message=r.error_message,
                )
                for r in results
            ),
        )
    (result,) = results
    kwargs: dict[str, Any] = {
        "error_code": ErrorCode(result.error_code),
        "node_id": result.node_id,
        "host": result.host,
        "port": result.port,
    }
    if version >= 1:
        kwargs["throttle_time"] = NO_THROTTLE
        kwargs["error_message"] = result.error_message
    return types.FindCoordinatorResponse(**kwargs)


def error_response(version: int, request: Any, error_code: int) -> Any:
    keys = request.coordinator_keys if version >= 4 else (request.key,)
    return _response(version, [CoordinatorResult(key, error_code) for key in keys])
