"""CreateTopics (API key 19): create the tenant's topics through the admin service.

Kafka's rules followed here (ControllerApis.createTopics, ReplicationControlManager):
- A topic named twice in one request answers INVALID_REQUEST once for that name.
- num_partitions / replication_factor -1 take the broker defaults (KIP-464, v4+).
- Manual replica assignments are not supported here: INVALID_REQUEST saying so.
- validate_only checks everything and creates nothing.
- v5+ answers the topic's partition count, replication factor and configs (KIP-525).
- The timeout bounds the wait: topics not done by then answer REQUEST_TIMED_OUT (their creation
  may still complete, as in Kafka). A timeout of 0 or less does not wait for other brokers in
  Kafka; creation here is one database transaction, so the answer is always the real outcome.

The helpers for "one admin operation per topic, within the request's timeout" live here and are
shared by DeleteTopics and CreatePartitions.
"""

from __future__ import annotations

import asyncio
import datetime
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .context import RequestContext
from .errors import ErrorCode
from .responses import NO_THROTTLE, build, response_module
from .services import AdminResult, ConfigEntry

API_KEY = 19
MIN_VERSION = 2  # kio has no v0-1; every client negotiates v2 or above (Kafka 1.0+)
MAX_VERSION = 7

DUPLICATE_TOPIC = "Duplicate topic name."
MANUAL_ASSIGNMENT_UNSUPPORTED = (
    "Manual replica assignments are not supported; give num_partitions and "
    "replication_factor and the controller places the replicas."
)

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class CreatedTopic(AdminResult):
    """AdminResult of a successful create_topic with what CreateTopics v5+ reports (KIP-525).

    An admin service may return this instead of a bare AdminResult; the handler then answers
    the topic's partition count, replication factor and configs.
    """

    num_partitions: int = -1
    replication_factor: int = -1
    configs: tuple[ConfigEntry, ...] = ()


def duplicated(keys: Iterable[K]) -> set[K]:
    """Keys that occur more than once in a request (answered INVALID_REQUEST, as Kafka)."""
    return {key for key, count in Counter(keys).items() if count > 1}


def timeout_ms_of(request: Any) -> int:
    timeout = getattr(request, "timeout", None)
    if isinstance(timeout, datetime.timedelta):
        return int(timeout.total_seconds() * 1000)
    return int(timeout or 0)


async def run_within(
    timeout_ms: int, work: Sequence[tuple[K, Callable[[], Awaitable[AdminResult]]]]
) -> dict[K, AdminResult]:
    """Run each operation in turn; those not done within `timeout_ms` answer REQUEST_TIMED_OUT.

    The answer comes at the deadline anyway, as Kafka's. An operation cut off at the deadline
    may still complete in its database thread: REQUEST_TIMED_OUT means "unknown", not "failed".
    A timeout of 0 or less sets no deadline.
    """
    results: dict[K, AdminResult] = {}

    async def run_all() -> None:
        for key, operation in work:
            results[key] = await operation()

    if timeout_ms <= 0:
        await run_all()
        return results
    task = asyncio.ensure_future(run_all())
    done, _ = await asyncio.wait({task}, timeout=timeout_ms / 1000)
    if task in done:
        task.result()  # re-raise a failure: the server answers with error_response
    else:
        task.cancel()
        message = f"Not done within the request's timeout of {timeout_ms} ms."
        for key, _ in work:
            results.setdefault(key, AdminResult(ErrorCode.request_timed_out, message))
    return results


async def run_per_topic(
    request: Any, start: Callable[[Any], Callable[[], Awaitable[AdminResult]]]
) -> list[tuple[str, AdminResult]]:
    """Run `start(topic)` once per topic named in a CreateTopics or CreatePartitions request.

    As Kafka: a name given twice answers INVALID_REQUEST for that name, manual replica
    assignments are refused, and whatever is not done within the request's timeout answers
    REQUEST_TIMED_OUT. Results come back in the order the names first appear.
    """
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
            work.append((topic.name, start(topic)))
    results.update(await run_within(timeout_ms_of(request), work))
    return [(name, results[name]) for name in names]


async def handle(ctx: RequestContext, request: Any) -> Any:
    admin = ctx.services.admin
    validate_only = bool(request.validate_only)

    def start(topic: Any) -> Callable[[], Awaitable[AdminResult]]:
        configs = {config.name: config.value for config in topic.configs}
        return lambda: admin.create_topic(
            ctx.principal,
            topic.name,
            topic.num_partitions,
            topic.replication_factor,
            configs,
            validate_only=validate_only,
        )

    return _response(ctx.api_version, await run_per_topic(request, start))


def error_response(version: int, request: Any, error_code: int) -> Any:
    names = list(dict.fromkeys(topic.name for topic in request.topics))
    return _response(version, [(name, AdminResult(error_code)) for name in names])


def _response(version: int, results: Sequence[tuple[str, AdminResult]]) -> Any:
    module = response_module(API_KEY, version)
    return build(
        module.CreateTopicsResponse,
        throttle_time=NO_THROTTLE,
        topics=tuple(_result(module, name, result) for name, result in results),
    )


def _result(module: Any, name: str, result: AdminResult) -> Any:
    created = result if isinstance(result, CreatedTopic) and result.error_code == 0 else None
    config_cls = getattr(module, "CreatableTopicConfigs", None)  # v5+
    configs = (
        tuple(
            build(
                config_cls,
                name=entry.name,
                value=None if entry.is_sensitive else entry.value,
                read_only=entry.read_only,
                config_source=entry.source,
                is_sensitive=entry.is_sensitive,
            )
            for entry in created.configs
        )
        if created is not None and config_cls is not None
        else ()
    )
    return build(
        module.CreatableTopicResult,
        name=name,
        topic_id=result.topic_id,
        error_code=ErrorCode(result.error_code),
        error_message=result.error_message,
        topic_config_error_code=0,
        num_partitions=created.num_partitions if created is not None else -1,
        replication_factor=created.replication_factor if created is not None else -1,
        configs=configs,
    )
