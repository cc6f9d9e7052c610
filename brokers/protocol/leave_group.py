"""LeaveGroup (API key 13): members leave a group at once, which rebalances the rest.

Versions 0-5. v0-2 carry one member id; v3+ a batch of members by member id or by static
instance id (KIP-345), each answered with its own error code.
"""

from __future__ import annotations

from typing import Any

from .context import RequestContext
from .errors import ErrorCode
from .group_services import LeaveResult, LeavingMember
from .responses import NO_THROTTLE, response_module

API_KEY = 13
MIN_VERSION = 0
MAX_VERSION = 5



async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    if version >= 3:
        members = [
            LeavingMember(m.member_id, m.group_instance_id, m.reason if version >= 5 else None)
            for m in request.members
        ]
    else:
        members = [LeavingMember(request.member_id)]
    result = await ctx.services.groups.leave_group(ctx.principal, request.group_id, members)
    return _response(version, result)


def _response(version: int, result: LeaveResult) -> Any:
    types = response_module(API_KEY, version)
    if version < 3:
        # One member: its own error is the response's (Kafka's LeaveGroupResponse for v0-2).
        error_code = result.error_code
        if not error_code and result.members:
            error_code = result.members[0][1]
        kwargs: dict[str, Any] = {"error_code": ErrorCode(error_code)}
        if version >= 1:
            kwargs["throttle_time"] = NO_THROTTLE
        return types.LeaveGroupResponse(**kwargs)
    return types.LeaveGroupResponse(
        throttle_time=NO_THROTTLE,
        error_code=ErrorCode(result.error_code),
        members=tuple(
            types.MemberResponse(
                member_id=member.member_id,
                group_instance_id=member.group_instance_id,
                error_code=ErrorCode(code),
            )
            for member, code in result.members
        ),
    )


def error_response(version: int, request: Any, error_code: int) -> Any:
    return _response(version, LeaveResult(error_code))
