"""A REST request's records as RecordBatch v2 bytes, one or more per partition, as Java partitions.

Records go where Kafka's Java producer puts them: the record's own partition, murmur2 of its
key (Java's ``Utils.toPositive(murmur2(key)) % partitions``), or, for every null-key record
of a request, one sticky partition (KIP-480: a batch of null-key records goes to one
partition). Batches are built with aiokafka's Cython builder and stay within the topic's
max.message.bytes; Produce v3+ takes one batch per partition, so a larger share of a request
is several batches, sent in order (kafka_client.py).

No Django here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from murmurhash2 import murmurhash2

# Kafka's Java client: murmur2 with this seed, the sign bit cleared, modulo the partitions.
_MURMUR2_SEED = 0x9747B28C


# murmur2 of keys seen lately. Keys repeat (a customer's, a device's): a dict lookup costs a
# fifth of the call into murmurhash2's extension, which was the largest single cost of building
# a request's batches. Short keys only, a bounded number, forgotten all at once when full.
_KEY_HASHES: dict[bytes, int] = {}
_KEY_HASHES_MAX = 1 << 16
_KEY_HASH_MAX_BYTES = 64
_NO_HEADERS: list = []  # aiokafka's builder wants a list; it only reads it


def key_hash(key: bytes) -> int:
    """Java's ``Utils.toPositive(murmur2(key))``: the partition is this modulo the count."""
    known = _KEY_HASHES.get(key)
    if known is not None:
        return known
    value = murmurhash2(key, _MURMUR2_SEED) & 0x7FFFFFFF
    if len(key) <= _KEY_HASH_MAX_BYTES:
        if len(_KEY_HASHES) >= _KEY_HASHES_MAX:
            _KEY_HASHES.clear()
        _KEY_HASHES[key] = value
    return value


def partition_for_key(key: bytes, partition_count: int) -> int:
    """Kafka's default partition of a keyed record."""
    return key_hash(key) % partition_count


@dataclass(slots=True)
class OutgoingRecord:
    """A record to produce: bytes ready for the wire; ``partition`` None lets murmur2 choose.

    (produce_decoder.py's records have the same attributes.)
    """

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] | None = None
    timestamp_ms: int | None = None
    partition: int | None = None


@dataclass(slots=True)
class PartitionBatches:
    """One partition's records as built batches, and where each record of the request is."""

    partition: int
    batches: list[bytes]
    # For batch i: the request positions of its records, in the batch's order.
    positions: list[list[int]]


@dataclass(slots=True)
class _Building:
    builder: Any
    batches: list[bytes] = field(default_factory=list)
    positions: list[list[int]] = field(default_factory=list)
    current: list[int] = field(default_factory=list)


def build_partition_batches(
    records: Sequence[Any], partition_count: int, max_batch_bytes: int,
    sticky_partition: int, now_ms: int | None = None,
) -> list[PartitionBatches]:
    """Records (``key``, ``value``, ``headers``, ``timestamp_ms``, ``partition``) as batches.

    ``sticky_partition`` takes the request's null-key records. Each batch stays within
    ``max_batch_bytes`` (a single larger record goes alone; the caller rejects those).
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    building: dict[int, _Building] = {}

    def new_builder() -> Any:
        # magic 2, no compression, not transactional, no producer id/epoch/sequence.
        return DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, max_batch_bytes)

    # The loop every record of a request passes through: written for speed (local names,
    # key_hash's lookup inlined).
    hashes = _KEY_HASHES
    for position, record in enumerate(records):
        key = record.key
        partition = record.partition
        if partition is None:
            if key is None:
                partition = sticky_partition
            else:
                hashed = hashes.get(key)
                partition = (key_hash(key) if hashed is None else hashed) % partition_count
        state = building.get(partition)
        if state is None:
            state = building[partition] = _Building(new_builder())
        timestamp = record.timestamp_ms
        if timestamp is None:
            timestamp = now_ms
        headers = record.headers or _NO_HEADERS
        current = state.current
        if state.builder.append(len(current), timestamp, key, record.value, headers) is None:
            # Full: this batch is done, the record starts the next one.
            state.batches.append(bytes(state.builder.build()))
            state.positions.append(current)
            state.builder, state.current = new_builder(), [position]
            state.builder.append(0, timestamp, key, record.value, headers)
        else:
            current.append(position)
    shares = []
    for partition, state in building.items():
        if state.current:
            state.batches.append(bytes(state.builder.build()))
            state.positions.append(state.current)
        shares.append(PartitionBatches(partition, state.batches, state.positions))
    return shares
