"""CreatePartitions (API key 37): grow the tenant's topics to a new partition count.

Kafka's rules followed here (ControllerApis.createPartitions, ReplicationControlManager):
- A topic named twice in one request answers INVALID_REQUEST for it.
- The count is the new total; not more than the current one answers INVALID_PARTITIONS.
- Manual replica assignments are not supported here: INVALID_REQUEST saying so.
- validate_only checks and changes nothing; the timeout bounds the wait as in CreateTopics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .context import RequestContext
from .create_topics import (
    DUPLICATE_TOPIC,
    MANUAL_ASSIGNMENT_UNSUPPORTED,
    duplicated,
    run_within,
    timeout_ms_of,
)
from .errors import ErrorCode
from .metadata import NO_THROTTLE, build, response_module
from .services import AdminResult

API_KEY = 37
MIN_VERSION = 0
MAX_VERSION = 3


async def handle(ctx: RequestContext, request: Any) -> Any:
    admin = ctx.services.admin
    principal = ctx.principal
    validate_only = bool(request.validate_only)
    duplicates = duplicated(topic.name for topic in request.topics)
    names: list[str] = []
    results: dict[str, AdminResult] = {}
    work: list[tuple[str, Callable[[], Awaitable[AdminResult]]]] = []
    for topic in request.topics:
        if topic.name in names:
            continue
        names.append(topic.name)
        if topic.name in duplicates:
            results[topic.name] = AdminResult(ErrorCode.invalid_request, DUPLICATE_TOPIC)
        elif topic.assignments:
            results[topic.name] = AdminResult(
                ErrorCode.invalid_request, MANUAL_ASSIGNMENT_UNSUPPORTED
            )
        else:

            def grow(topic: Any = topic) -> Awaitable[AdminResult]:
                return admin.create_partitions(
                    principal, topic.name, topic.count, validate_only=validate_only
                )

            work.append((topic.name, grow))
    results.update(await run_within(timeout_ms_of(request), work))
    return _response(ctx.api_version, [(name, results[name]) for name in names])


def error_response(version: int, request: Any, error_code: int) -> Any:
    names = list(dict.fromkeys(topic.name for topic in request.topics))
    return _response(version, [(name, AdminResult(error_code)) for name in names])


def _response(version: int, results: Sequence[tuple[str, AdminResult]]) -> Any:
    module = response_module(API_KEY, version)
    return build(
        module.CreatePartitionsResponse,
        throttle_time=NO_THROTTLE,
        results=tuple(
            build(
                module.CreatePartitionsTopicResult,
                name=name,
                error_code=ErrorCode(result.error_code),
                error_message=result.error_message,
            )
            for name, result in results
        ),
    )
