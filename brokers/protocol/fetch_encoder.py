"""Hand-rolled FetchResponse encoder: records fields stay separate chunks, to go out by sendfile.

kio (our codec, see README.md) writes a whole response into one buffer, which would copy every
partition's records into memory. Fetch is the one response where that matters, so it is encoded
here: the fixed fields go into small bytes chunks, each partition's records become a chunk of
its own (bytes, memoryview or a FileSlice of a segment file). The output is byte for byte what
kio encodes (tests/unit/protocol/test_protocol_fetch_encoder.py checks that with kio's decoder).

Versions 4-18, the range of Kafka 4.x and of kio; field versions as in Kafka's
FetchResponse.json: flexible from 12, topic ids instead of names from 13, node endpoints from 16.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from .chunks import Chunk, EncodedBody, FileSlice

MIN_VERSION = 4
MAX_VERSION = 18
FIRST_FLEXIBLE_VERSION = 12
FIRST_TOPIC_ID_VERSION = 13
FIRST_NODE_ENDPOINTS_VERSION = 16

# Records shorter than this are copied into the surrounding chunk: a separate write (or a
# sendfile) per tiny batch costs more than the copy.
INLINE_RECORDS_BYTES = 4096

Records = bytes | bytearray | memoryview | FileSlice | None

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_PARTITION_HEAD = struct.Struct(">ihqq")  # index, error code, high watermark, last stable offset
_INT64 = struct.Struct(">q")


@dataclass(slots=True)
class AbortedTransaction:
    producer_id: int
    first_offset: int


@dataclass(slots=True)
class FetchPartition:
    """One partition of a FetchResponse; defaults are Kafka's schema defaults."""

    partition_index: int
    error_code: int = 0
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    aborted_transactions: Sequence[AbortedTransaction] | None = None
    preferred_read_replica: int = -1
    records: Records = None
    # Tagged fields (v12+), written only when set, as Kafka does for non-default values.
    diverging_epoch: tuple[int, int] | None = None  # (epoch, end offset)
    current_leader: tuple[int, int] | None = None  # (leader id, leader epoch), KIP-951


@dataclass(slots=True)
class FetchTopic:
    """Versions up to 12 name the topic, 13+ give its id."""

    partitions: Sequence[FetchPartition]
    name: str | None = None
    topic_id: uuid.UUID | None = None


@dataclass(slots=True)
class NodeEndpoint:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(slots=True)
class FetchResponseData:
    topics: Sequence[FetchTopic]
    throttle_time_ms: int = 0
    error_code: int = 0
    session_id: int = 0
    node_endpoints: Sequence[NodeEndpoint] = field(default_factory=tuple)  # v16+, KIP-951


def encode_fetch_response(version: int, response: FetchResponseData) -> EncodedBody:
    """The body of a FetchResponse of `version` as chunks; records are never copied if large."""
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise ValueError(f"FetchResponse v{version} is outside {MIN_VERSION}-{MAX_VERSION}")
    writer = _ChunkWriter(flexible=version >= FIRST_FLEXIBLE_VERSION)
    writer.int32(response.throttle_time_ms)
    if version >= 7:
        writer.int16(response.error_code)
        writer.int32(response.session_id)
    writer.array_length(len(response.topics))
    for topic in response.topics:
        if version >= FIRST_TOPIC_ID_VERSION:
            writer.uuid(topic.topic_id)
        else:
            writer.string(topic.name or "")
        writer.array_length(len(topic.partitions))
        for partition in topic.partitions:
            _write_partition(writer, version, partition)
        writer.no_tagged_fields()
    if writer.flexible:
        if version >= FIRST_NODE_ENDPOINTS_VERSION and response.node_endpoints:
            tag = _ChunkWriter(flexible=True)
            tag.array_length(len(response.node_endpoints))
            for node in response.node_endpoints:
                tag.int32(node.node_id)
                tag.string(node.host)
                tag.int32(node.port)
                tag.nullable_string(node.rack)
                tag.no_tagged_fields()
            writer.tagged_fields([(0, tag.inline_bytes())])
        else:
            writer.no_tagged_fields()
    return EncodedBody(writer.finish())


def _write_partition(writer: _ChunkWriter, version: int, partition: FetchPartition) -> None:
    writer.raw(
        _PARTITION_HEAD.pack(
            partition.partition_index,
            partition.error_code,
            partition.high_watermark,
            partition.last_stable_offset,
        )
    )
    if version >= 5:
        writer.raw(_INT64.pack(partition.log_start_offset))
    aborted = partition.aborted_transactions
    if aborted is None:
        writer.null_array()
    else:
        writer.array_length(len(aborted))
        for transaction in aborted:
            writer.raw(_INT64.pack(transaction.producer_id))
            writer.raw(_INT64.pack(transaction.first_offset))
            writer.no_tagged_fields()
    if version >= 11:
        writer.int32(partition.preferred_read_replica)
    writer.records(partition.records)
    if writer.flexible:
        tags: list[tuple[int, bytes]] = []
        if partition.diverging_epoch is not None:
            epoch, end_offset = partition.diverging_epoch
            tags.append((0, _INT32.pack(epoch) + _INT64.pack(end_offset) + b"\x00"))
        if partition.current_leader is not None:
            leader_id, leader_epoch = partition.current_leader
            tags.append((1, _INT32.pack(leader_id) + _INT32.pack(leader_epoch) + b"\x00"))
        writer.tagged_fields(tags)


class _ChunkWriter:
    """Appends fields to a bytearray; a large records field closes it and becomes its own chunk."""

    __slots__ = ("buffer", "chunks", "flexible")

    def __init__(self, flexible: bool) -> None:
        self.flexible = flexible
        self.buffer = bytearray()
        self.chunks: list[Chunk] = []

    def raw(self, data: bytes) -> None:
        self.buffer += data

    def int16(self, value: int) -> None:
        self.buffer += _INT16.pack(value)

    def int32(self, value: int) -> None:
        self.buffer += _INT32.pack(value)

    def uvarint(self, value: int) -> None:
        buffer = self.buffer
        while value > 0x7F:
            buffer.append((value & 0x7F) | 0x80)
            value >>= 7
        buffer.append(value)

    def array_length(self, count: int) -> None:
        if self.flexible:
            self.uvarint(count + 1)
        else:
            self.int32(count)

    def null_array(self) -> None:
        if self.flexible:
            self.buffer.append(0)
        else:
            self.int32(-1)

    def string(self, value: str) -> None:
        encoded = value.encode()
        if self.flexible:
            self.uvarint(len(encoded) + 1)
        else:
            self.int16(len(encoded))
        self.buffer += encoded

    def nullable_string(self, value: str | None) -> None:
        if value is not None:
            self.string(value)
        elif self.flexible:
            self.buffer.append(0)
        else:
            self.int16(-1)

    def uuid(self, value: uuid.UUID | None) -> None:
        self.buffer += (value or uuid.UUID(int=0)).bytes

    def records(self, records: Records) -> None:
        if records is None:
            self.null_array()  # same encoding as a null array: -1 or 0
            return
        length = len(records)
        if self.flexible:
            self.uvarint(length + 1)
        else:
            self.int32(length)
        if length == 0:
            return
        if length < INLINE_RECORDS_BYTES and not isinstance(records, FileSlice):
            self.buffer += records
            return
        if self.buffer:
            self.chunks.append(bytes(self.buffer))
            self.buffer = bytearray()
        self.chunks.append(records)

    def no_tagged_fields(self) -> None:
        if self.flexible:
            self.buffer.append(0)

    def tagged_fields(self, tags: Sequence[tuple[int, bytes]]) -> None:
        self.uvarint(len(tags))
        for tag, data in tags:
            self.uvarint(tag)
            self.uvarint(len(data))
            self.buffer += data

    def inline_bytes(self) -> bytes:
        """Everything written so far, for nested values that never hold records."""
        assert not self.chunks
        return bytes(self.buffer)

    def finish(self) -> list[Chunk]:
        if self.buffer:
            self.chunks.append(bytes(self.buffer))
        return self.chunks
