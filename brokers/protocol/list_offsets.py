"""ListOffsets (API key 2): the offset for a timestamp, or the log's earliest / latest / max.

Versions 1-11 (v0's list of old-style offsets is left out: no client we support sends it).
Timestamps: -2 earliest (log start offset), -1 latest (log end offset; read_committed would be
the last stable offset, which equals it without transactions), -3 the record with the largest
timestamp (KIP-734, v7+), -4 earliest local (KIP-405: the log start offset, nothing is tiered),
-5 earliest pending upload (KIP-1023: none), any other timestamp the first offset whose record
timestamp is at or after it (offset -1 and timestamp -1 when there is none). v4+ carries the
client's current leader epoch: older than ours answers FENCED_LEADER_EPOCH, newer
UNKNOWN_LEADER_EPOCH (KIP-320).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .context import RequestContext
from .errors import ErrorCode
from .responses import NO_THROTTLE, response_module

API_KEY = 2
MIN_VERSION = 1
MAX_VERSION = 11



async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    types = response_module(API_KEY, version)
    log = ctx.services.log
    principal = ctx.principal
    topics = []
    seen: set[tuple[str, int]] = set()
    for topic in request.topics:
        partitions = []
        for partition in topic.partitions:
            index = partition.partition_index
            key = (topic.name, index)
            if key in seen:  # Kafka rejects a partition listed twice
                partitions.append(_partition(types, version, index, ErrorCode.invalid_request))
                continue
            seen.add(key)
            result = await log.list_offset(
                principal,
                topic.name,
                index,
                timestamp=partition.timestamp,
                current_leader_epoch=getattr(partition, "current_leader_epoch", -1),
            )
            partitions.append(
                _partition(
                    types,
                    version,
                    index,
                    result.error_code,
                    result.timestamp,
                    result.offset,
                    result.leader_epoch,
                )
            )
        topics.append(types.ListOffsetsTopicResponse(name=topic.name, partitions=tuple(partitions)))
    return _response(types, version, topics)


def _partition(
    types: ModuleType,
    version: int,
    index: int,
    error_code: int,
    timestamp: int = -1,
    offset: int = -1,
    leader_epoch: int = -1,
) -> Any:
    kwargs: dict[str, Any] = {
        "partition_index": index,
        "error_code": ErrorCode(error_code),
        "timestamp": timestamp,
        "offset": offset,
    }
    if version >= 4:
        kwargs["leader_epoch"] = leader_epoch
    return types.ListOffsetsPartitionResponse(**kwargs)


def _response(types: ModuleType, version: int, topics: list[Any]) -> Any:
    if version >= 2:
        return types.ListOffsetsResponse(throttle_time=NO_THROTTLE, topics=tuple(topics))
    return types.ListOffsetsResponse(topics=tuple(topics))


def error_response(version: int, request: Any, error_code: int) -> Any:
    types = response_module(API_KEY, version)
    topics = [
        types.ListOffsetsTopicResponse(
            name=topic.name,
            partitions=tuple(
                _partition(types, version, p.partition_index, error_code)
                for p in topic.partitions
            ),
        )
        for topic in request.topics
    ]
    return _response(types, version, topics)
