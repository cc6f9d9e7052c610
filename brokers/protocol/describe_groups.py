"""DescribeGroups (API key 15): state, protocol and members (with assignments) of groups.

Versions 0-6. A group the tenant does not have is state "Dead" with no members; from v6 also
GROUP_ID_NOT_FOUND (KIP-1043). Members' metadata and assignments show only while Stable.
"""

from __future__ import annotations

from typing import Any

from .context import RequestContext
from .errors import ErrorCode
from .group_services import GroupDescription
from .responses import NO_THROTTLE, response_module

API_KEY = 15
MIN_VERSION = 0
MAX_VERSION = 6

# Kafka's "authorized operations not requested", and the bits of READ (3), DELETE (6) and
# DESCRIBE (8): what a tenant may do with its own groups.
_OPERATIONS_NOT_REQUESTED = -(2**31)
_GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)


async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    with_operations = version >= 3 and request.include_authorized_operations
    groups = ctx.services.groups
    described = [
        await groups.describe_group(ctx.principal, group_id) for group_id in request.groups
    ]
    return _response(version, described, with_operations)


def _response(version: int, described: list[GroupDescription], with_operations: bool) -> Any:
    types = response_module(API_KEY, version)
    groups = []
    for group in described:
        error_code = ErrorCode(group.error_code)
        error_message = None
        if version >= 6 and not error_code and group.state == "Dead":
            error_code = ErrorCode.group_id_not_found
            error_message = f"group {group.group_id} not found"
        members = []
        for member in group.members:
            member_kwargs: dict[str, Any] = {
                "member_id": member.member_id,
                "client_id": member.client_id,
                "client_host": member.client_host,
                "member_metadata": member.metadata,
                "member_assignment": member.assignment,
            }
            if version >= 4:
                member_kwargs["group_instance_id"] = member.group_instance_id
            members.append(types.DescribedGroupMember(**member_kwargs))
        kwargs: dict[str, Any] = {
            "error_code": error_code,
            "group_id": group.group_id,
            "group_state": group.state,
            "protocol_type": group.protocol_type,
            "protocol_data": group.protocol_name,
            "members": tuple(members),
        }
        if version >= 3:
            kwargs["authorized_operations"] = (
                _GROUP_OPERATIONS if with_operations else _OPERATIONS_NOT_REQUESTED
            )
        if version >= 6:
            kwargs["error_message"] = error_message
        groups.append(types.DescribedGroup(**kwargs))
    response: dict[str, Any] = {"groups": tuple(groups)}
    if version >= 1:
        response["throttle_time"] = NO_THROTTLE
    return types.DescribeGroupsResponse(**response)


def error_response(version: int, request: Any, error_code: int) -> Any:
    described = [GroupDescription(group_id, error_code, state="") for group_id in request.groups]
    return _response(version, described, False)
