"""AlterConfigs (API key 33): replace a topic's configs whole; configs not given return to default.

Kafka's rules followed here (ConfigAdminManager, ControllerApis.alterConfigs):
- A null value answers INVALID_REQUEST; a key given twice in one resource, or a resource given
  twice, INVALID_REQUEST; unknown configs and bad values INVALID_CONFIG.
- TOPIC resources of the tenant only (others' are UNKNOWN_TOPIC_OR_PARTITION).
- BROKER settings are read-only here: changing any answers INVALID_CONFIG.
- Other resource types answer INVALID_REQUEST. validate_only checks and changes nothing.

The request checks shared with IncrementalAlterConfigs live here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from . import codec
from .context import RequestContext
from .create_topics import duplicated
from .describe_configs import (
    RESOURCE_BROKER,
    RESOURCE_TOPIC,
    broker_resource_error,
    unsupported_resource,
)
from .errors import ErrorCode
from .responses import NO_THROTTLE, build, response_module
from .services import AdminResult

API_KEY = 33
MIN_VERSION = 0
MAX_VERSION = 2

DUPLICATE_RESOURCE = "Duplicate resource in one request."


def config_errors(names: Sequence[str], null_valued: Iterable[str]) -> AdminResult | None:
    """INVALID_REQUEST for a key given twice or a null value where one is needed, else None."""
    if duplicated(names):
        return AdminResult(ErrorCode.invalid_request, "Error due to duplicate config keys")
    nulls = sorted(set(null_valued))
    if nulls:
        return AdminResult(
            ErrorCode.invalid_request, f"Null value not supported for : {', '.join(nulls)}"
        )
    return None


def alter_broker(ctx: RequestContext, name: str, keys: Sequence[str]) -> AdminResult:
    """Broker settings cannot change at run time here; an empty change is fine."""
    error = broker_resource_error(ctx, name)
    if error is not None:
        return error
    if keys:
        return AdminResult(
            ErrorCode.invalid_config,
            f"Cannot update these configs dynamically: {', '.join(sorted(set(keys)))}",
        )
    return AdminResult()


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


async def _alter(ctx: RequestContext, resource: Any, validate_only: bool) -> AdminResult:
    names = [config.name for config in resource.configs]
    error = config_errors(names, (c.name for c in resource.configs if c.value is None))
    if error is not None:
        return error
    if resource.resource_type == RESOURCE_TOPIC:
        return await ctx.services.admin.alter_topic_configs(
            ctx.principal,
            resource.resource_name,
            {config.name: config.value for config in resource.configs},
            (),
            replace_all=True,
            validate_only=validate_only,
        )
    if resource.resource_type == RESOURCE_BROKER:
        return alter_broker(ctx, resource.resource_name, names)
    return unsupported_resource(resource.resource_type)


def error_response(version: int, request: Any, error_code: int) -> Any:
    return response(
        API_KEY, version, [(resource, AdminResult(error_code)) for resource in request.resources]
    )


def response(api_key: int, version: int, results: Sequence[tuple[Any, AdminResult]]) -> Any:
    """AlterConfigs' or IncrementalAlterConfigs' response (the two have the same shape)."""
    module = response_module(api_key, version)
    return build(
        codec.response_type(api_key, version),
        throttle_time=NO_THROTTLE,
        responses=tuple(
            build(
                module.AlterConfigsResourceResponse,
                error_code=ErrorCode(result.error_code),
                error_message=result.error_message,
                resource_type=resource.resource_type,
                resource_name=resource.resource_name,
            )
            for resource, result in results
        ),
    )
