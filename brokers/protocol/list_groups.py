"""ListGroups (API key 16): the groups of the principal's tenant that this broker coordinates.

Versions 0-5. Admin clients ask every broker and merge. v4 filters by state (case-insensitive,
as Kafka), v5 by group type: every group here is "classic".
"""

from __future__ import annotations

from typing import Any

from .context import RequestContext
from .errors import ErrorCode
from .group_services import GroupOverview
from .responses import NO_THROTTLE, response_module

API_KEY = 16
MIN_VERSION = 0
MAX_VERSION = 5

GROUP_TYPE = "classic"


async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    states = request.states_filter if version >= 4 else ()
    types_filter = {t.lower() for t in request.types_filter} if version >= 5 else set()
    if types_filter and GROUP_TYPE not in types_filter:
        return _response(version, ErrorCode.none, ())
    error_code, groups = await ctx.services.groups.list_groups(ctx.principal, states)
    return _response(version, error_code, groups)


def _response(version: int, error_code: int, groups: tuple[GroupOverview, ...]) -> Any:
    types = response_module(API_KEY, version)
    listed = []
    for group in groups:
        kwargs: dict[str, Any] = {"group_id": group.group_id, "protocol_type": group.protocol_type}
        if version >= 4:
            kwargs["group_state"] = group.state
        if version >= 5:
            kwargs["group_type"] = GROUP_TYPE
        listed.append(types.ListedGroup(**kwargs))
    response: dict[str, Any] = {"error_code": ErrorCode(error_code), "groups": tuple(listed)}
    if version >= 1:
        response["throttle_time"] = NO_THROTTLE
    return types.ListGroupsResponse(**response)


def error_response(version: int, request: Any, error_code: int) -> Any:
    return _response(version, error_code, ())
