"""OffsetCommit (API key 8): a group stores where its consumers are in each partition.

Versions 2-10 (v0-1 are gone from Kafka 4). A member commits with its member id and the
group's generation; generation -1 with no member id is a "simple" commit (assign(), admin
tools), allowed while the group is Empty or unknown. v6 adds the leader epoch, v7 static
membership; from v9 a non-simple commit to an unknown group is GROUP_ID_NOT_FOUND (before:
ILLEGAL_GENERATION, as Kafka); v10 names topics by id (UNKNOWN_TOPIC_ID when not found).
"""

from __future__ import annotations

from typing import Any

from .context import RequestContext
from .errors import ErrorCode
from .group_services import CommitRequest, OffsetToCommit
from .responses import NO_THROTTLE, response_module

API_KEY = 8
MIN_VERSION = 2
MAX_VERSION = 10



async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    names = [_topic_name(ctx, version, topic) for topic in request.topics]
    offsets = tuple(
        OffsetToCommit(
            topic=name,
            partition=p.partition_index,
            offset=p.committed_offset,
            leader_epoch=p.committed_leader_epoch if version >= 6 else -1,
            metadata=p.committed_metadata,
        )
        for topic, name in zip(request.topics, names, strict=True)
        if name is not None
        for p in topic.partitions
    )
    commit = CommitRequest(
        group_id=request.group_id,
        generation_id=request.generation_id_or_member_epoch,
        member_id=request.member_id,
        group_instance_id=request.group_instance_id if version >= 7 else None,
        offsets=offsets,
    )
    stored = iter(await ctx.services.groups.commit_offsets(ctx.principal, commit))
    codes = [
        [ErrorCode.unknown_topic_id] * len(topic.partitions)
        if name is None
        else [_version_error(version, next(stored).error_code) for _ in topic.partitions]
        for topic, name in zip(request.topics, names, strict=True)
    ]
    return _response(version, request, codes)


def _topic_name(ctx: RequestContext, version: int, topic: Any) -> str | None:
    if version < 10:
        return topic.name
    info = ctx.services.metadata.topic_by_id(ctx.principal, topic.topic_id)
    return None if info is None else info.name


def _version_error(version: int, error_code: int) -> ErrorCode:
    if version < 9 and error_code == ErrorCode.group_id_not_found:
        return ErrorCode.illegal_generation
    return ErrorCode(error_code)


def _response(version: int, request: Any, codes: list[list[ErrorCode]]) -> Any:
    types = response_module(API_KEY, version)
    topics = tuple(
        types.OffsetCommitResponseTopic(
            partitions=tuple(
                types.OffsetCommitResponsePartition(
                    partition_index=p.partition_index, error_code=code
                )
                for p, code in zip(topic.partitions, topic_codes, strict=True)
            ),
            **({"topic_id": topic.topic_id} if version >= 10 else {"name": topic.name}),
        )
        for topic, topic_codes in zip(request.topics, codes, strict=True)
    )
    if version >= 3:
        return types.OffsetCommitResponse(throttle_time=NO_THROTTLE, topics=topics)
    return types.OffsetCommitResponse(topics=topics)


def error_response(version: int, request: Any, error_code: int) -> Any:
    codes = [[ErrorCode(error_code)] * len(topic.partitions) for topic in request.topics]
    return _response(version, request, codes)
