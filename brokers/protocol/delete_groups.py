"""DeleteGroups (API key 42): delete Empty groups with their committed offsets.

Versions 0-2. A group with members is NON_EMPTY_GROUP; one the tenant does not have,
GROUP_ID_NOT_FOUND.
"""

from __future__ import annotations

from typing import Any

from .context import RequestContext
from .errors import ErrorCode
from .responses import NO_THROTTLE, response_module

API_KEY = 42
MIN_VERSION = 0
MAX_VERSION = 2



async def handle(ctx: RequestContext, request: Any) -> Any:
    groups = ctx.services.groups
    results = [
        (group_id, await groups.delete_group(ctx.principal, group_id))
        for group_id in request.groups_names
    ]
    return _response(ctx.api_version, results)


def _response(version: int, results: list[tuple[str, int]]) -> Any:
    types = response_module(API_KEY, version)
    return types.DeleteGroupsResponse(
        throttle_time=NO_THROTTLE,
        results=tuple(
            types.DeletableGroupResult(group_id=group_id, error_code=ErrorCode(code))
            for group_id, code in results
        ),
    )


def error_response(version: int, request: Any, error_code: int) -> Any:
    return _response(version, [(group_id, error_code) for group_id in request.groups_names])
