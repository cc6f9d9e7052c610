"""SyncGroup (API key 14): members get their assignment, which the group's leader sends.

Versions 0-5 (v3 static membership, v5 protocol type and name checked against the group's).
"""

from __future__ import annotations

from typing import Any

from .context import RequestContext
from .errors import ErrorCode
from .group_services import SyncRequest, SyncResult
from .responses import NO_THROTTLE, response_module

API_KEY = 14
MIN_VERSION = 0
MAX_VERSION = 5



async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    sync = SyncRequest(
        group_id=request.group_id,
        generation_id=request.generation_id,
        member_id=request.member_id,
        group_instance_id=request.group_instance_id if version >= 3 else None,
        protocol_type=request.protocol_type if version >= 5 else None,
        protocol_name=request.protocol_name if version >= 5 else None,
        assignments={a.member_id: a.assignment for a in request.assignments},
    )
    result = await ctx.services.groups.sync_group(ctx.principal, sync)
    return _response(version, result)


def _response(version: int, result: SyncResult) -> Any:
    kwargs: dict[str, Any] = {
        "error_code": ErrorCode(result.error_code),
        "assignment": result.assignment,
    }
    if version >= 1:
        kwargs["throttle_time"] = NO_THROTTLE
    if version >= 5:
        kwargs["protocol_type"] = result.protocol_type
        kwargs["protocol_name"] = result.protocol_name
    return response_module(API_KEY, version).SyncGroupResponse(**kwargs)


def error_response(version: int, request: Any, error_code: int) -> Any:
    return _response(version, SyncResult(error_code))
