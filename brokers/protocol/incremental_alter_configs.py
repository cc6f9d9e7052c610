"""IncrementalAlterConfigs (API key 44): SET, DELETE, APPEND and SUBTRACT topic configs (KIP-339).

Kafka's rules followed here (ConfigAdminManager.prepareIncrementalConfigs):
- SET gives a config a value; DELETE returns it to the default.
- APPEND and SUBTRACT work on LIST configs (cleanup.policy): the current value (the topic's or
  the default) with the given items added (those not yet there) or taken away. On any other
  config they answer INVALID_CONFIG.
- A key given twice in one resource, a null value for SET/APPEND/SUBTRACT, an unknown operation
  or a resource given twice answer INVALID_REQUEST; unknown configs and bad values
  INVALID_CONFIG. BROKER settings are read-only here; other resource types INVALID_REQUEST.

APPEND and SUBTRACT read the current value, then set the result: two clients appending to the
same config at the same moment may lose one append (the AdminService seam has no
compare-and-set for configs).
"""

from __future__ import annotations

from typing import Any

from .alter_configs import DUPLICATE_RESOURCE, alter_broker, config_errors, response
from .context import RequestContext
from .create_topics import duplicated
from .describe_configs import (
    CONFIG_TYPE_LIST,
    RESOURCE_BROKER,
    RESOURCE_TOPIC,
    unsupported_resource,
)
from .errors import ErrorCode
from .services import AdminResult

API_KEY = 44
MIN_VERSION = 0
MAX_VERSION = 1

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
_OPERATION_NAMES = {APPEND: "append", SUBTRACT: "subtract"}


async def handle(ctx: RequestContext, request: Any) -> Any:
    duplicate_resources = duplicated(
        (resource.resource_type, resource.resource_name) for resource in request.resources
    )
    results = []
    for resource in request.resources:
        if (resource.resource_type, resource.resource_name) in duplicate_resources:
            result = AdminResult(ErrorCode.invalid_request, DUPLICATE_RESOURCE)
        else:
            result = await _alter(ctx, resource, bool(request.validate_only))
        results.append((resource, result))
    return response(API_KEY, ctx.api_version, results)


def error_response(version: int, request: Any, error_code: int) -> Any:
    return response(
        API_KEY, version, [(resource, AdminResult(error_code)) for resource in request.resources]
    )


async def _alter(ctx: RequestContext, resource: Any, validate_only: bool) -> AdminResult:
    configs = resource.configs
    unknown = [c for c in configs if c.config_operation not in (SET, DELETE, APPEND, SUBTRACT)]
    if unknown:
        return AdminResult(
            ErrorCode.invalid_request,
            f"Unknown config operation {unknown[0].config_operation} for {unknown[0].name}.",
        )
    error = config_errors(
        [c.name for c in configs],
        (c.name for c in configs if c.value is None and c.config_operation != DELETE),
    )
    if error is not None:
        return error
    if resource.resource_type == RESOURCE_BROKER:
        return alter_broker(ctx, resource.resource_name, [c.name for c in configs])
    if resource.resource_type != RESOURCE_TOPIC:
        return unsupported_resource(resource.resource_type)
    set_configs = {c.name: c.value for c in configs if c.config_operation == SET}
    delete_configs = [c.name for c in configs if c.config_operation == DELETE]
    list_changes = [c for c in configs if c.config_operation in (APPEND, SUBTRACT)]
    if list_changes:
        result, values = await _apply_list_changes(ctx, resource.resource_name, list_changes)
        if result.error_code:
            return result
        set_configs.update(values)
    return await ctx.services.admin.alter_topic_configs(
        ctx.principal,
        resource.resource_name,
        set_configs,
        delete_configs,
        replace_all=False,
        validate_only=validate_only,
    )


async def _apply_list_changes(
    ctx: RequestContext, topic: str, changes: list[Any]
) -> tuple[AdminResult, dict[str, str]]:
    """The new values of LIST configs after APPEND / SUBTRACT, from their current values."""
    keys = [change.name for change in changes]
    result, entries = await ctx.services.admin.describe_topic_configs(ctx.principal, topic, keys)
    if result.error_code:
        return result, {}
    current = {entry.name: entry for entry in entries}
    values: dict[str, str] = {}
    for change in changes:
        entry = current.get(change.name)
        if entry is None:
            return AdminResult(
                ErrorCode.invalid_config, f"Unknown topic config name: {change.name}"
            ), {}
        if entry.config_type != CONFIG_TYPE_LIST:
            operation = _OPERATION_NAMES[change.config_operation]
            return AdminResult(
                ErrorCode.invalid_config,
                f"Config value {operation} is not allowed for config key: {change.name}",
            ), {}
        items = _items(entry.value)
        given = _items(change.value)
        if change.config_operation == APPEND:
            items += [item for item in given if item not in items]
        else:
            items = [item for item in items if item not in given]
        values[change.name] = ",".join(items)
    return AdminResult(), values


def _items(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]
