"""Produce (API key 0): append each partition's RecordBatch-v2 blob to its leader's log.

Versions 3-13: from v3 records are RecordBatch v2 only (magic 2; the log rejects anything
else as CORRUPT_MESSAGE), v13 names topics by id (KIP-516), resolved through
MetadataView.topic_by_id. Records stay bytes from the socket to the segment; the log checks
only batch headers (CRC32C, sizes, counts).

Kafka's rules kept here:

- acks must be 0, 1 or -1, else every partition answers INVALID_REQUIRED_ACKS.
- acks=0 gets no response; if any partition failed, the connection is closed instead, as
  Kafka does, so the producer notices and refreshes its metadata.
- Transactions are not implemented (no transaction coordinator): a request with a
  transactional id or transactional batches answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
  what Kafka answers a principal that may not use the transactional id.
- An idempotent producer's batches (producer id >= 0, ids from InitProducerId) are checked per
  partition by the log's producer state: a retried duplicate answers its first copy's offsets,
  a sequence gap OUT_OF_ORDER_SEQUENCE_NUMBER, a fenced epoch INVALID_PRODUCER_EPOCH.
"""

from __future__ import annotations

import datetime
import struct
from types import ModuleType
from typing import Any

from .context import RequestContext
from .errors import ErrorCode
from .responses import NO_THROTTLE, response_module

API_KEY = 0
MIN_VERSION = 3
MAX_VERSION = 13
FIRST_TOPIC_ID_VERSION = 13

_ATTRIBUTES = struct.Struct(">h")
_POS_ATTRIBUTES = 21  # RecordBatch v2: baseOffset(8) length(4) epoch(4) magic(1) crc(4)
_TRANSACTIONAL_OR_CONTROL = 0x10 | 0x20
_UTC = datetime.UTC


async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    acks = request.acks
    if acks not in (0, 1, -1):
        return error_response(version, request, ErrorCode.invalid_required_acks)
    if request.transactional_id is not None or _has_transactional_batches(request):
        if acks == 0:
            ctx.connection.close_after_response = True
            return None
        return error_response(version, request, ErrorCode.transactional_id_authorization_failed)
    types = response_module(API_KEY, version)
    services = ctx.services
    log = services.log
    principal = ctx.principal
    timeout_ms = int(request.timeout.total_seconds() * 1000)
    has_errors = False
    topics = []
    for topic in request.topic_data:
        if version >= FIRST_TOPIC_ID_VERSION:
            info = services.metadata.topic_by_id(principal, topic.topic_id)
            name = info.name if info is not None else None
            unknown_code = ErrorCode.unknown_topic_id
        else:
            name = topic.name
            unknown_code = ErrorCode.unknown_topic_or_partition
        partitions = []
        for partition in topic.partition_data:
            if name is None:
                partitions.append(_partition_error(types, version, partition.index, unknown_code))
                has_errors = True
                continue
            if not partition.records:
                partitions.append(
                    _partition_error(types, version, partition.index, ErrorCode.invalid_record)
                )
                has_errors = True
                continue
            result = await log.append(
                principal,
                name,
                partition.index,
                partition.records,
                required_acks=acks,
                timeout_ms=timeout_ms,
            )
            has_errors = has_errors or result.error_code != 0
            partitions.append(_partition_response(types, version, partition.index, result))
        topics.append(_topic_response(types, version, topic, partitions))
    if acks == 0:
        if has_errors:
            ctx.connection.close_after_response = True
        return None
    return types.ProduceResponse(responses=tuple(topics), throttle_time=NO_THROTTLE)


def _has_transactional_batches(request: Any) -> bool:
    """Whether a partition's first batch is transactional or a control batch (a client's
    batches in one request share the producer's mode, so the first tells)."""
    for topic in request.topic_data:
        for partition in topic.partition_data:
            records = partition.records
            if records and len(records) > _POS_ATTRIBUTES + 2:
                (attributes,) = _ATTRIBUTES.unpack_from(records, _POS_ATTRIBUTES)
                if attributes & _TRANSACTIONAL_OR_CONTROL:
                    return True
    return False


def _topic_response(types: ModuleType, version: int, topic: Any, partitions: list[Any]) -> Any:
    if version >= FIRST_TOPIC_ID_VERSION:
        return types.TopicProduceResponse(
            topic_id=topic.topic_id, partition_responses=tuple(partitions)
        )
    return types.TopicProduceResponse(name=topic.name, partition_responses=tuple(partitions))


def _partition_response(types: ModuleType, version: int, index: int, result: Any) -> Any:
    if result.error_code != 0:
        message = result.error_message
        return _partition_error(types, version, index, result.error_code, message)
    append_time = result.log_append_time_ms
    kwargs: dict[str, Any] = {
        "index": index,
        "error_code": ErrorCode.none,
        "base_offset": result.base_offset,
        "log_append_time": (
            datetime.datetime.fromtimestamp(append_time / 1000, _UTC) if append_time >= 0 else None
        ),
    }
    if version >= 5:
        kwargs["log_start_offset"] = result.log_start_offset
    if version >= 8:
        kwargs["record_errors"] = ()
    return types.PartitionProduceResponse(**kwargs)


def _partition_error(
    types: ModuleType, version: int, index: int, error_code: int, message: str | None = None
) -> Any:
    kwargs: dict[str, Any] = {
        "index": index,
        "error_code": ErrorCode(error_code),
        "base_offset": -1,
        "log_append_time": None,
    }
    if version >= 5:
        kwargs["log_start_offset"] = -1
    if version >= 8:
        kwargs["record_errors"] = ()
        kwargs["error_message"] = message
    return types.PartitionProduceResponse(**kwargs)


def error_response(version: int, request: Any, error_code: int) -> Any:
    """Every partition of the request answers `error_code` (acks=0 included: Kafka would close)."""
    types = response_module(API_KEY, version)
    topics = tuple(
        _topic_response(
            types,
            version,
            topic,
            [_partition_error(types, version, p.index, error_code) for p in topic.partition_data],
        )
        for topic in request.topic_data
    )
    return types.ProduceResponse(responses=topics, throttle_time=NO_THROTTLE)
