"""RecordBatch v2 (magic 2): the batch header: layout, validation, rewrite, assembly.

Layout (Kafka's DefaultRecordBatch; big-endian):

    baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 |
    crc uint32 | attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 |
    maxTimestamp int64 | producerId int64 | producerEpoch int16 | baseSequence int32 |
    recordsCount int32 | records...

CRC32C covers attributes to the end, so changing baseOffset or the leader epoch needs no new
CRC; LogAppendTime changes attributes and maxTimestamp, so it does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from crc32c import crc32c

from brokers.log import compression
from brokers.log.errors import (
    CorruptRecordException,
    InvalidRecordException,
    RecordTooLargeException,
    UnsupportedCompressionTypeException,
)

HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_BYTES = HEADER.size  # 61
LOG_OVERHEAD = 12  # baseOffset + batchLength: batchLength counts the bytes after it
MAGIC = 2

OFFSET_LENGTH = struct.Struct(">qi")  # the first 12 bytes
LAST_OFFSET_DELTA = struct.Struct(">i")
INT64 = struct.Struct(">q")
CRC = struct.Struct(">I")

POS_LEADER_EPOCH = 12
POS_MAGIC = 16
POS_CRC = 17
POS_ATTRIBUTES = 21
POS_LAST_OFFSET_DELTA = 23
POS_BASE_TIMESTAMP = 27
POS_MAX_TIMESTAMP = 35
POS_RECORDS_COUNT = 57

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20

CREATE_TIME = 0
LOG_APPEND_TIME = 1
NO_TIMESTAMP = -1


class BatchInfo(NamedTuple):
    """What append needs from one valid batch header, read without touching its records."""

    position: int
    size: int
    last_offset_delta: int
    records_count: int
    max_timestamp: int
    attributes: int
    producer_id: int = -1
    producer_epoch: int = -1
    base_sequence: int = -1


def validate_batches(data: memoryview, max_message_bytes: int) -> list[BatchInfo]:
    """Check every batch in ``data`` as Kafka's LogValidator does; raise on the first bad one.

    ``data`` must hold whole batches only (a Produce request's records field).
    """
    batches = []
    position = 0
    end = len(data)
    if end == 0:
        raise InvalidRecordException("empty records")
    while position < end:
        if end - position < HEADER_BYTES:
            raise CorruptRecordException("records end inside a batch header")
        (_, length, _, magic, crc, attributes, last_delta, _, max_ts, producer_id,
         producer_epoch, base_sequence, count) = HEADER.unpack_from(data, position)
        size = length + LOG_OVERHEAD
        if magic != MAGIC:
            raise CorruptRecordException(f"magic {magic} is not 2 (RecordBatch v2)")
        if size < HEADER_BYTES or position + size > end:
            raise CorruptRecordException(f"batch length {length} does not fit the buffer")
        if size > max_message_bytes:
            raise RecordTooLargeException(
                f"batch of {size} bytes exceeds max.message.bytes {max_message_bytes}"
            )
        if crc32c(data[position + POS_ATTRIBUTES : position + size]) != crc:
            raise CorruptRecordException("batch CRC32C does not match")
        if attributes & COMPRESSION_MASK > compression.ZSTD:
            raise UnsupportedCompressionTypeException(
                f"compression codec {attributes & COMPRESSION_MASK}"
            )
        if count <= 0 or last_delta + 1 != count:
            raise InvalidRecordException(
                f"records count {count} disagrees with lastOffsetDelta {last_delta}"
            )
        if producer_id >= 0 and base_sequence < 0:
            # LogValidator: an idempotent producer numbers every batch it sends.
            raise InvalidRecordException(
                f"producer {producer_id} sent a batch without a sequence number")
        batches.append(BatchInfo(position, size, last_delta, count, max_ts, attributes,
                                 producer_id, producer_epoch, base_sequence))
        position += size
    return batches


def crc_of(batch: bytes | bytearray | memoryview) -> int:
    """CRC32C of a whole batch as Kafka computes it (attributes to the end)."""
    return crc32c(memoryview(batch)[POS_ATTRIBUTES:])


def is_valid_batch(view: memoryview, position: int, end: int) -> tuple[int, int, int, int]:
    """(size, base offset, last offset, max timestamp) of the batch at ``position``.

    Raises CorruptRecordException when it is torn, has a bad length, magic or CRC.
    """
    if end - position < HEADER_BYTES:
        raise CorruptRecordException("torn batch header")
    (base, length, _, magic, crc, _, last_delta, _, max_ts, _, _, _, _) = HEADER.unpack_from(
        view, position
    )
    size = length + LOG_OVERHEAD
    if magic != MAGIC or size < HEADER_BYTES or position + size > end or last_delta < 0:
        raise CorruptRecordException("bad batch length, magic or offset range")
    if crc32c(view[position + POS_ATTRIBUTES : position + size]) != crc:
        raise CorruptRecordException("bad batch CRC")
    return size, base, base + last_delta, max_ts


def assemble_batch(body: bytes | bytearray | memoryview, count: int, base_offset: int,
                   codec: int, base_timestamp: int, max_timestamp: int, last_offset_delta: int,
                   *, attributes: int = 0, leader_epoch: int = -1, producer_id: int = -1,
                   producer_epoch: int = -1, base_sequence: int = -1) -> bytearray:
    """A batch around already encoded records ``body`` (compressed here with ``codec``)."""
    payload = compression.compress(codec, body)
    attributes = (attributes & ~COMPRESSION_MASK) | codec
    out = bytearray(HEADER_BYTES)
    out += payload
    HEADER.pack_into(out, 0, base_offset, len(out) - LOG_OVERHEAD, leader_epoch, MAGIC, 0,
                     attributes, last_offset_delta, base_timestamp, max_timestamp, producer_id,
                     producer_epoch, base_sequence, count)
    CRC.pack_into(out, POS_CRC, crc_of(out))
    return out


def iter_batches(view: memoryview, position: int = 0, end: int | None = None
                 ) -> Iterator[tuple[int, int, int, int]]:
    """(position, size, base offset, last offset) of each whole batch, without CRC checks."""
    end = len(view) if end is None else end
    while end - position >= HEADER_BYTES:
        base, length = OFFSET_LENGTH.unpack_from(view, position)
        size = length + LOG_OVERHEAD
        if position + size > end or size < HEADER_BYTES:
            return
        (last_delta,) = LAST_OFFSET_DELTA.unpack_from(view, position + POS_LAST_OFFSET_DELTA)
        yield position, size, base, base + last_delta
        position += size


_HEAD = struct.Struct(">qiib")  # baseOffset, batchLength, partitionLeaderEpoch, magic


def rewrite_for_append(view: memoryview, info: BatchInfo, base_offset: int, leader_epoch: int,
                       log_append_time_ms: int) -> tuple[bytes | bytearray, memoryview]:
    """(new header bytes, the batch's untouched rest) to write for a leader append.

    baseOffset, batchLength, partitionLeaderEpoch and magic lie before the CRC'd range and are
    rewritten alone; with LogAppendTime (``log_append_time_ms`` >= 0) the timestamp-type bit
    and maxTimestamp change too, and the CRC is recomputed over the batch.
    """
    start, end = info.position, info.position + info.size
    if log_append_time_ms < 0:
        return (_HEAD.pack(base_offset, info.size - LOG_OVERHEAD, leader_epoch, MAGIC),
                view[start + POS_CRC : end])
    header = bytearray(view[start : start + HEADER_BYTES])
    _HEAD.pack_into(header, 0, base_offset, info.size - LOG_OVERHEAD, leader_epoch, MAGIC)
    struct.pack_into(">h", header, POS_ATTRIBUTES, info.attributes | TIMESTAMP_TYPE_BIT)
    INT64.pack_into(header, POS_MAX_TIMESTAMP, log_append_time_ms)
    rest = view[start + HEADER_BYTES : end]
    CRC.pack_into(header, POS_CRC, crc32c(rest, crc32c(header[POS_ATTRIBUTES:])))
    return header, rest
