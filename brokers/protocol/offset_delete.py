"""OffsetDelete (API key 47): delete a group's committed offsets of some partitions (KIP-496).

Version 0, the only one Kafka releases define (and kio has). As Kafka's KafkaApis: partitions
of topics the tenant does not have are UNKNOWN_TOPIC_OR_PARTITION; the rest go to the group's
coordinator, which answers GROUP_SUBSCRIBED_TO_TOPIC for topics a member of a non-empty consumer
group subscribes to. A group-level error (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, NOT_COORDINATOR,
INVALID_GROUP_ID...) is the response's, with no topics.
"""

from __future__ import annotations

from typing import Any

from .context import RequestContext
from .errors import ErrorCode
from .responses import NO_THROTTLE, response_module

API_KEY = 47
MIN_VERSION = 0
MAX_VERSION = 0


async def handle(ctx: RequestContext, request: Any) -> Any:
    metadata = ctx.services.metadata
    codes: dict[tuple[str, int], int] = {}
    known: list[tuple[str, int]] = []
    for topic in request.topics:
        info = metadata.topic(ctx.principal, topic.name)
        indexes = set() if info is None else {p.index for p in info.partitions}
        for p in topic.partitions:
            key = (topic.name, p.partition_index)
            if p.partition_index in indexes:
                known.append(key)
            else:
                codes[key] = ErrorCode.unknown_topic_or_partition
    result = await ctx.services.groups.delete_offsets(ctx.principal, request.group_id, known)
    if result.error_code:
        return error_response(ctx.api_version, request, result.error_code)
    for partition in result.partitions:
        codes[(partition.topic, partition.partition)] = partition.error_code
    types = response_module(API_KEY, ctx.api_version)
    return types.OffsetDeleteResponse(
        error_code=ErrorCode.none,
        throttle_time=NO_THROTTLE,
        topics=tuple(
            types.OffsetDeleteResponseTopic(
                name=topic.name,
                partitions=tuple(
                    types.OffsetDeleteResponsePartition(
                        partition_index=p.partition_index,
                        error_code=ErrorCode(codes[(topic.name, p.partition_index)]),
                    )
                    for p in topic.partitions
                ),
            )
            for topic in request.topics
        ),
    )


def error_response(version: int, request: Any, error_code: int) -> Any:
    types = response_module(API_KEY, version)
    return types.OffsetDeleteResponse(
        error_code=ErrorCode(error_code), throttle_time=NO_THROTTLE, topics=()
    )
