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
from .create_topics import run_per_topic
from .errors import ErrorCode
from .responses import NO_THROTTLE, build, response_module
from .services import AdminResult

API_KEY = 37
MIN_VERSION = 0
MAX_VERSION = 3


async def handle(ctx: RequestContext, request: Any) -> Any:
    admin = ctx.services.admin
    validate_only = bool(request.validate_only)

    def start(topic: Any) -> Callable[[], Awaitable[AdminResult]]:
        return lambda: admin.create_partitions(
            ctx.principal, topic.name, topic.count, validate_only=validate_only
        )

    return _response(ctx.api_version, await run_per_topic(request, start))


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
