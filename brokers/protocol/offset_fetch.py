"""OffsetFetch (API key 9): a group's committed offsets, -1 for partitions without one.

Versions 1-10. Topics null (v2+) asks for every partition the group has committed; v5 adds
leader epochs, v7 require_stable (no transactions here, so nothing is ever pending), v8 several
groups per request (KIP-709), v10 topics by id. A group error (NOT_COORDINATOR...) is the
response's (v2+) or each partition's (v1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .context import RequestContext
from .errors import ErrorCode
from .group_services import CommittedOffsetInfo
from .responses import NO_THROTTLE, response_module

API_KEY = 9
MIN_VERSION = 1
MAX_VERSION = 10



async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    types = response_module(API_KEY, version)
    require_stable = request.require_stable if version >= 7 else False
    if version < 8:
        error_code, topics = await _fetch_group(
            ctx, version, request.group_id, request.topics, require_stable
        )
        kwargs: dict[str, Any] = {"topics": topics}
        if version >= 2:
            kwargs["error_code"] = error_code
        if version >= 3:
            kwargs["throttle_time"] = NO_THROTTLE
        return types.OffsetFetchResponse(**kwargs)
    groups = []
    for group in request.groups:
        error_code, topics = await _fetch_group(
            ctx, version, group.group_id, group.topics, require_stable
        )
        groups.append(
            types.OffsetFetchResponseGroup(
                group_id=group.group_id, topics=topics, error_code=error_code
            )
        )
    return types.OffsetFetchResponse(throttle_time=NO_THROTTLE, groups=tuple(groups))


async def _fetch_group(
    ctx: RequestContext,
    version: int,
    group_id: str,
    requested: Sequence[Any] | None,
    require_stable: bool,
) -> tuple[ErrorCode, tuple[Any, ...]]:
    """(group error, response topics) for one group."""
    metadata = ctx.services.metadata
    by_key: dict[Any, str | None] = {}  # the request's topic (name or id) → name, if known
    partitions: list[tuple[str, int]] | None = None
    if requested is not None:
        partitions = []
        for topic in requested:
            if version >= 10:
                info = metadata.topic_by_id(ctx.principal, topic.topic_id)
                name = None if info is None else info.name
                by_key[topic.topic_id] = name
            else:
                name = by_key[topic.name] = topic.name
            if name is not None:
                partitions += [(name, index) for index in topic.partition_indexes]
    result = await ctx.services.groups.fetch_offsets(
        ctx.principal, group_id, partitions, require_stable=require_stable
    )
    error = ErrorCode(result.error_code)
    if error and version >= 2:
        return error, ()
    found = {(o.topic, o.partition): o for o in result.offsets}
    if requested is None:
        grouped: dict[str, list[CommittedOffsetInfo]] = {}
        for offset in result.offsets:
            grouped.setdefault(offset.topic, []).append(offset)
        topics = []
        for name, offsets in grouped.items():
            key: Any = name
            if version >= 10:
                info = metadata.topic(ctx.principal, name)
                if info is None:
                    continue
                key = info.topic_id
            topics.append(_topic(version, key, offsets, ErrorCode.none))
        return error, tuple(topics)
    topics = []
    for topic in requested:
        key = topic.topic_id if version >= 10 else topic.name
        name = by_key[key]
        if name is None:
            unknown = [CommittedOffsetInfo("", index) for index in topic.partition_indexes]
            topics.append(_topic(version, key, unknown, ErrorCode.unknown_topic_id))
            continue
        offsets = [
            found.get((name, index), CommittedOffsetInfo(name, index))
            for index in topic.partition_indexes
        ]
        topics.append(_topic(version, key, offsets, error))
    return error, tuple(topics)


def _topic(version: int, key: Any, offsets: Sequence[CommittedOffsetInfo], error: ErrorCode) -> Any:
    types = response_module(API_KEY, version)
    plural = version >= 8
    partition_cls = (
        types.OffsetFetchResponsePartitions if plural else types.OffsetFetchResponsePartition
    )
    topic_cls = types.OffsetFetchResponseTopics if plural else types.OffsetFetchResponseTopic
    partitions = []
    for o in offsets:
        kwargs: dict[str, Any] = {
            "partition_index": o.partition,
            "committed_offset": o.offset if not error else -1,
            "metadata": o.metadata if not error else "",
            "error_code": error or ErrorCode(o.error_code),
        }
        if version >= 5:
            kwargs["committed_leader_epoch"] = o.leader_epoch if not error else -1
        partitions.append(partition_cls(**kwargs))
    name_or_id = {"topic_id": key} if version >= 10 else {"name": key}
    return topic_cls(partitions=tuple(partitions), **name_or_id)


def error_response(version: int, request: Any, error_code: int) -> Any:
    types = response_module(API_KEY, version)
    error = ErrorCode(error_code)
    if version >= 8:
        return types.OffsetFetchResponse(
            throttle_time=NO_THROTTLE,
            groups=tuple(
                types.OffsetFetchResponseGroup(group_id=g.group_id, topics=(), error_code=error)
                for g in request.groups
            ),
        )
    topics: tuple[Any, ...] = ()
    if version < 2:
        topics = tuple(
            _topic(
                version,
                t.name,
                [CommittedOffsetInfo(t.name, index) for index in t.partition_indexes],
                error,
            )
            for t in request.topics or ()
        )
    kwargs: dict[str, Any] = {"topics": topics}
    if version >= 2:
        kwargs["error_code"] = error
    if version >= 3:
        kwargs["throttle_time"] = NO_THROTTLE
    return types.OffsetFetchResponse(**kwargs)
