"""JoinGroup (API key 11): a member (re)joins a group; answered when the rebalance barrier falls.

Versions 0-9. v0 has no rebalance timeout (the session timeout serves, as in Kafka); from v4 a
member without id first gets MEMBER_ID_REQUIRED and an id (KIP-394); v5 static membership
(KIP-345); v9 lets a static leader skip re-assignment (KIP-814). The wait happens inside the
coordinator; this connection answers nothing else meanwhile, as Kafka mutes it.
"""

from __future__ import annotations

import datetime
from typing import Any

from .context import RequestContext
from .errors import ErrorCode
from .group_services import JoinRequest, JoinResult
from .responses import NO_THROTTLE, response_module

API_KEY = 11
MIN_VERSION = 0
MAX_VERSION = 9

_MS = datetime.timedelta(milliseconds=1)


async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    session_timeout_ms = request.session_timeout // _MS
    join = JoinRequest(
        group_id=request.group_id,
        member_id=request.member_id,
        group_instance_id=request.group_instance_id if version >= 5 else None,
        protocol_type=request.protocol_type,
        protocols=tuple((p.name, p.metadata) for p in request.protocols),
        session_timeout_ms=session_timeout_ms,
        rebalance_timeout_ms=(
            request.rebalance_timeout // _MS if version >= 1 else session_timeout_ms
        ),
        client_id=ctx.client_id or "",
        client_host="/" + ctx.connection.peer.rsplit(":", 1)[0],
        require_known_member_id=version >= 4,
        supports_skip_assignment=version >= 9,
        reason=request.reason if version >= 8 else None,
    )
    result = await ctx.services.groups.join_group(ctx.principal, join)
    return _response(version, result)


def _response(version: int, result: JoinResult) -> Any:
    types = response_module(API_KEY, version)
    members = tuple(
        types.JoinGroupResponseMember(
            member_id=m.member_id,
            metadata=m.metadata,
            **({"group_instance_id": m.group_instance_id} if version >= 5 else {}),
        )
        for m in result.members
    )
    kwargs: dict[str, Any] = {
        "error_code": ErrorCode(result.error_code),
        "generation_id": result.generation_id,
        # Nullable from v7; before that an empty string stands for "none".
        "protocol_name": result.protocol_name if version >= 7 else result.protocol_name or "",
        "leader": result.leader_id,
        "member_id": result.member_id,
        "members": members,
    }
    if version >= 2:
        kwargs["throttle_time"] = NO_THROTTLE
    if version >= 7:
        kwargs["protocol_type"] = result.protocol_type
    if version >= 9:
        kwargs["skip_assignment"] = result.skip_assignment
    return types.JoinGroupResponse(**kwargs)


def error_response(version: int, request: Any, error_code: int) -> Any:
    return _response(version, JoinResult(error_code, member_id=request.member_id))
