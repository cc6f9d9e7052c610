"""DeleteTopics (API key 20): delete the tenant's topics by name, or by topic id (v6+).

Kafka's rules followed here (ControllerApis.deleteTopics):
- A topic named (or id given) twice in one request answers INVALID_REQUEST for it.
- v6+ names a topic by name or by id, not both and not neither (INVALID_REQUEST).
- An unknown name answers UNKNOWN_TOPIC_OR_PARTITION, an unknown id UNKNOWN_TOPIC_ID; another
  tenant's topics are unknown.
- The timeout bounds the wait as in CreateTopics (create_topics.run_within).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .context import RequestContext
from .create_topics import duplicated, run_within, timeout_ms_of
from .errors import ErrorCode
from .responses import NO_THROTTLE, build, response_module
from .services import AdminResult

API_KEY = 20
MIN_VERSION = 1  # kio has no v0; clients negotiate v1 or above (Kafka 0.11+)
MAX_VERSION = 6

# A topic as the request names it: (name, topic id); one of them is None when all is well.
Named = tuple[str | None, uuid.UUID | None]


def requested_topics(request: Any) -> list[Named]:
    if hasattr(request, "topics"):  # v6+
        return [(topic.name, topic.topic_id) for topic in request.topics]
    return [(name, None) for name in request.topic_names]


async def handle(ctx: RequestContext, request: Any) -> Any:
    admin = ctx.services.admin
    view = ctx.services.metadata
    principal = ctx.principal
    requested = requested_topics(request)
    duplicates = duplicated(requested)
    order: list[Named] = []
    results: dict[Named, tuple[str | None, uuid.UUID | None, AdminResult]] = {}
    work: list[tuple[Named, Callable[[], Awaitable[AdminResult]]]] = []
    for key in requested:
        if key in order:
            continue
        order.append(key)
        name, topic_id = key
        if key in duplicates:
            what = "name" if name is not None else "id"
            results[key] = (
                name,
                topic_id,
                AdminResult(ErrorCode.invalid_request, f"Duplicate topic {what}."),
            )
            continue
        if name is not None and topic_id is not None:
            message = "Give a topic's name or its id, not both."
            results[key] = (name, topic_id, AdminResult(ErrorCode.invalid_request, message))
            continue
        if name is None and topic_id is None:
            message = "Neither topic name nor id were specified."
            results[key] = (None, None, AdminResult(ErrorCode.invalid_request, message))
            continue
        if name is None:
            found = view.topic_by_id(principal, topic_id)  # type: ignore[arg-type]
            if found is None:
                results[key] = (None, topic_id, AdminResult(ErrorCode.unknown_topic_id))
                continue
            name = found.name

        def delete(name: str = name) -> Awaitable[AdminResult]:
            return admin.delete_topic(principal, name)

        results[key] = (name, topic_id, AdminResult())
        work.append((key, delete))
    outcomes = await run_within(timeout_ms_of(request), work)
    answers = []
    for key in order:
        name, topic_id, result = results[key]
        if key in outcomes:
            result = outcomes[key]
            topic_id = topic_id or result.topic_id
        answers.append((name, topic_id, result))
    return _response(ctx.api_version, answers)


def error_response(version: int, request: Any, error_code: int) -> Any:
    keys = list(dict.fromkeys(requested_topics(request)))
    return _response(
        version, [(name, topic_id, AdminResult(error_code)) for name, topic_id in keys]
    )


def _response(
    version: int, answers: Sequence[tuple[str | None, uuid.UUID | None, AdminResult]]
) -> Any:
    module = response_module(API_KEY, version)
    return build(
        module.DeleteTopicsResponse,
        throttle_time=NO_THROTTLE,
        responses=tuple(
            build(
                module.DeletableTopicResult,
                name=name,
                topic_id=topic_id,
                error_code=ErrorCode(result.error_code),
                error_message=result.error_message,
            )
            for name, topic_id, result in answers
        ),
    )
