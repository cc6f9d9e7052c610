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


def partition_for_key(key: bytes, partition_count: int) -> int:
    """Kafka's default partition of a keyed record."""
    return (murmurhash2(key, _MURMUR2_SEED) & 0x7FFFFFFF) % partition_count


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

    for position, record in enumerate(records):
        partition = record.partition
        if partition is None:
            key = record.key
            partition = (
                sticky_partition if key is None else partition_for_key(key, partition_count)
            )
        state = building.get(partition)
        if state is None:
            state = building[partition] = _Building(new_builder())
        timestamp = record.timestamp_ms if record.timestamp_ms is not None else now_ms
        headers = record.headers or []
        if state.builder.append(len(state.current), timestamp, record.key, record.value,
                                headers) is None:
            # Full: this batch is done, the record starts the next one.
            state.batches.append(bytes(state.builder.build()))
            state.positions.append(state.current)
            state.builder, state.current = new_builder(), []
            state.builder.append(0, timestamp, record.key, record.value, headers)
        state.current.append(position)
    shares = []
    for partition, state in building.items():
        if state.current:
            state.batches.append(bytes(state.builder.build()))
            state.positions.append(state.current)
        shares.append(PartitionBatches(partition, state.batches, state.positions))
    return shares
