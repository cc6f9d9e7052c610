"""DescribeConfigs (API key 32): topic configs of the tenant, and this broker's settings.

Kafka's rules followed here (ConfigHelper.describeConfigs):
- TOPIC resources: every config, or those in configuration_keys (null or empty means every
  one); unknown keys are left out. Source DYNAMIC_TOPIC_CONFIG for a value set on the topic,
  DEFAULT_CONFIG otherwise. An illegal name answers INVALID_TOPIC_EXCEPTION, a missing topic
  (or another tenant's) UNKNOWN_TOPIC_OR_PARTITION.
- BROKER resources name this broker's id, or "" for the cluster default; another id answers
  INVALID_REQUEST. Settings are read-only here (source STATIC_BROKER_CONFIG).
- Other resource types (BROKER_LOGGER, CLIENT_METRICS, GROUP...) answer INVALID_REQUEST.
- Sensitive values are null; documentation only when include_documentation (v3+); each
  config lists itself as its first synonym when include_synonyms (the only one known here).

The config-resource helpers shared with AlterConfigs and IncrementalAlterConfigs live here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from .context import RequestContext
from .errors import ErrorCode
from .responses import NO_THROTTLE, build, response_module
from .services import AdminResult, ConfigEntry

API_KEY = 32
MIN_VERSION = 1  # kio has no v0; every client negotiates v1 or above
MAX_VERSION = 4

# Kafka's ConfigResource.Type ids.
RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4

# Kafka's ConfigSource and ConfigType ids.
STATIC_BROKER_CONFIG = 4
CONFIG_TYPE_BOOLEAN = 1
CONFIG_TYPE_LIST = 7


@runtime_checkable
class BrokerConfigs(Protocol):
    """What an AdminService offers to describe this broker's settings (not in services.py yet).

    Each entry read-only, source STATIC_BROKER_CONFIG, with Kafka's broker config name.
    """

    def broker_configs(self) -> Sequence[ConfigEntry]: ...


def broker_config_entries(ctx: RequestContext) -> Sequence[ConfigEntry]:
    """This broker's settings: from the admin service if it can tell, else what services say."""
    admin = ctx.services.admin
    if isinstance(admin, BrokerConfigs):
        return admin.broker_configs()
    return (
        ConfigEntry(
            name="auto.create.topics.enable",
            value=str(bool(ctx.services.auto_create_topics_enable)).lower(),
            source=STATIC_BROKER_CONFIG,
            is_default=False,
            read_only=True,
            config_type=CONFIG_TYPE_BOOLEAN,
        ),
    )


def unsupported_resource(resource_type: int) -> AdminResult:
    return AdminResult(
        ErrorCode.invalid_request,
        f"Resource type {resource_type} is not supported here; TOPIC ({RESOURCE_TOPIC}) and "
        f"BROKER ({RESOURCE_BROKER}) are.",
    )


def broker_resource_error(ctx: RequestContext, resource_name: str) -> AdminResult | None:
    """INVALID_REQUEST unless the resource names this broker or the cluster default ("")."""
    if resource_name in ("", str(ctx.services.node_id)):
        return None
    return AdminResult(
        ErrorCode.invalid_request,
        f"Unexpected broker id, expected {ctx.services.node_id} or empty string, but received "
        f"{resource_name}",
    )


async def handle(ctx: RequestContext, request: Any) -> Any:
    include_documentation = bool(getattr(request, "include_documentation", False))
    results = []
    for resource in request.resources:
        keys = tuple(resource.configuration_keys or ()) or None
        result, entries = await _describe(ctx, resource.resource_type, resource.resource_name, keys)
        results.append((resource, result, entries))
    module = response_module(API_KEY, ctx.api_version)
    return build(
        module.DescribeConfigsResponse,
        throttle_time=NO_THROTTLE,
        results=tuple(
            _result(
                module, resource, result, entries, request.include_synonyms, include_documentation
            )
            for resource, result, entries in results
        ),
    )


async def _describe(
    ctx: RequestContext, resource_type: int, name: str, keys: Sequence[str] | None
) -> tuple[AdminResult, Sequence[ConfigEntry]]:
    if resource_type == RESOURCE_TOPIC:
        return await ctx.services.admin.describe_topic_configs(ctx.principal, name, keys)
    if resource_type == RESOURCE_BROKER:
        error = broker_resource_error(ctx, name)
        if error is not None:
            return error, ()
        entries = broker_config_entries(ctx)
        if keys is not None:
            entries = [entry for entry in entries if entry.name in keys]
        return AdminResult(), entries
    return unsupported_resource(resource_type), ()


def error_response(version: int, request: Any, error_code: int) -> Any:
    module = response_module(API_KEY, version)
    return build(
        module.DescribeConfigsResponse,
        throttle_time=NO_THROTTLE,
        results=tuple(
            _result(module, resource, AdminResult(error_code), (), False, False)
            for resource in request.resources
        ),
    )


def _result(
    module: Any,
    resource: Any,
    result: AdminResult,
    entries: Sequence[ConfigEntry],
    include_synonyms: bool,
    include_documentation: bool,
) -> Any:
    return build(
        module.DescribeConfigsResult,
        error_code=ErrorCode(result.error_code),
        error_message=result.error_message,
        resource_type=resource.resource_type,
        resource_name=resource.resource_name,
        configs=tuple(
            _config(module, entry, include_synonyms, include_documentation) for entry in entries
        ),
    )


def _config(
    module: Any, entry: ConfigEntry, include_synonyms: bool, include_documentation: bool
) -> Any:
    value = None if entry.is_sensitive else entry.value
    synonyms = (
        (build(module.DescribeConfigsSynonym, name=entry.name, value=value, source=entry.source),)
        if include_synonyms
        else ()
    )
    return build(
        module.DescribeConfigsResourceResult,
        name=entry.name,
        value=value,
        read_only=entry.read_only,
        is_default=entry.is_default,
        config_source=entry.source,
        is_sensitive=entry.is_sensitive,
        synonyms=synonyms,
        config_type=entry.config_type,
        documentation=entry.documentation if include_documentation else None,
    )
