"""Heartbeat (API key 12): a member says it is alive, and learns whether to rejoin.

Versions 0-4 (v3 static membership). REBALANCE_IN_PROGRESS tells the member to rejoin;
ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID and FENCED_INSTANCE_ID that it is out of date or out.
"""

from __future__ import annotations

from typing import Any

from .context import RequestContext
from .errors import ErrorCode
from .responses import NO_THROTTLE, response_module

API_KEY = 12
MIN_VERSION = 0
MAX_VERSION = 4



async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    error_code = await ctx.services.groups.heartbeat(
        ctx.principal,
        request.group_id,
        request.generation_id,
        request.member_id,
        request.group_instance_id if version >= 3 else None,
    )
    return error_response(version, request, error_code)


def error_response(version: int, request: Any, error_code: int) -> Any:
    kwargs: dict[str, Any] = {"error_code": ErrorCode(error_code)}
    if version >= 1:
        kwargs["throttle_time"] = NO_THROTTLE
    return response_module(API_KEY, version).HeartbeatResponse(**kwargs)
