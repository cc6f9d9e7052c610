"""ReplicaLogManager: the protocol's LogManager seam over this node's replica logs.

Produce, Fetch and ListOffsets reach the partitions a broker leads through here: a topic name
as the tenant sees it becomes the tenant's replica (ReplicaManager), leadership and the leader
epoch come from the current MetadataSnapshot, and the log's exceptions become Kafka's codes.

Runs on the node's event-loop thread only, as ReplicaManager does: that thread is the logs'
single writer, and PartitionLog's calls are fast enough to make there directly (a 1 MB append
is about 1 ms), so nothing here awaits.

Idempotent producers (KIP-98): the log checks their batches (brokers/log/producer_state.py). A
retried batch answers NONE with its first copy's base offset, as Kafka does; a sequence gap
answers OUT_OF_ORDER_SEQUENCE_NUMBER (45), a fenced epoch INVALID_PRODUCER_EPOCH (47), each a
LogError carrying its code.

What is not there yet, by design of this step:

- Replication. The high watermark is the log end offset and the last stable offset is the high
  watermark (no transactions). ``acks=-1`` (all) answers like ``acks=1``, once the leader's
  local append is done; when followers fetch, it must wait for the ISR instead.
- Leader epochs per offset (Kafka's leader-epoch cache). ListOffsets answers leader epoch -1,
  which tells clients to skip the KIP-320 truncation check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from brokers.log.errors import LogError
from brokers.log.partition import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, PartitionLog
from brokers.node.replicas import ReplicaManager
from brokers.node.snapshot import MetadataSnapshot, PartitionMeta
from brokers.protocol.chunks import FileSlice
from brokers.protocol.errors import ErrorCode
from brokers.protocol.services import AppendResult, OffsetResult, Principal, ReadResult

MAX_TIMESTAMP = -3  # KIP-734: the record with the largest timestamp
EARLIEST_LOCAL_TIMESTAMP = -4  # KIP-405: no tiered storage here, so the log start offset
EARLIEST_PENDING_UPLOAD_TIMESTAMP = -5  # KIP-1023: nothing is ever uploaded here

VALID_ACKS = (0, 1, -1)

# Slices shorter than this are read into memory: a sendfile per small batch (a consumer at
# the log end gets one or two) costs more than the copy. Same threshold as fetch_encoder's.
INLINE_READ_BYTES = 4096


class ReplicaLogManager:
    """The LogManager of one broker node (see brokers/protocol/services.py for the contract)."""

    def __init__(
        self,
        replicas: ReplicaManager,
        snapshot: Callable[[], MetadataSnapshot | None],
        broker_id: int,
        tenant_of: Callable[[Principal | None], str],
    ) -> None:
        self._replicas = replicas
        self._snapshot = snapshot
        self._broker_id = broker_id
        self._tenant_of = tenant_of
        self._waiters: set[asyncio.Future[None]] = set()

    # --- which log ----------------------------------------------------------------------

    def _leader_log(
        self, principal: Principal | None, topic: str, partition: int, current_leader_epoch: int
    ) -> tuple[PartitionLog, PartitionMeta] | int:
        """The replica log this broker leads for (topic, partition), or Kafka's error code."""
        snapshot = self._snapshot()
        if snapshot is None:
            return ErrorCode.unknown_topic_or_partition
        tenant = self._tenant_of(principal)
        topic_meta = snapshot.topics.get((tenant, topic))
        if topic_meta is None:
            return ErrorCode.unknown_topic_or_partition
        partitions = topic_meta.partitions
        if 0 <= partition < len(partitions) and partitions[partition].index == partition:
            partition_meta = partitions[partition]
        else:
            partition_meta = next((p for p in partitions if p.index == partition), None)
            if partition_meta is None:
                return ErrorCode.unknown_topic_or_partition
        # KIP-320: a client that knows a newer epoch than ours must wait for our metadata; one
        # that knows an older epoch must refresh its own. -1 means the client does not say.
        if current_leader_epoch >= 0:
            if current_leader_epoch < partition_meta.leader_epoch:
                return ErrorCode.fenced_leader_epoch
            if current_leader_epoch > partition_meta.leader_epoch:
                return ErrorCode.unknown_leader_epoch
        if partition_meta.leader_id != self._broker_id:
            return ErrorCode.not_leader_or_follower
        log = self._replicas.get(tenant, topic, partition)
        if log is None:  # metadata names us leader, the replica is not open yet
            return ErrorCode.not_leader_or_follower
        return log, partition_meta

    # --- produce --------------------------------------------------------------------------

    async def append(
        self,
        principal: Principal | None,
        topic: str,
        partition: int,
        records: bytes,
        *,
        required_acks: int,
        timeout_ms: int,
    ) -> AppendResult:
        """Append as leader; every acks answers after the local append (no replication yet)."""
        if required_acks not in VALID_ACKS:
            return AppendResult(ErrorCode.invalid_required_acks)
        found = self._leader_log(principal, topic, partition, -1)
        if isinstance(found, int):
            return AppendResult(found)
        log, partition_meta = found
        try:
            info = log.append_batch(records, partition_meta.leader_epoch)
        except LogError as exc:  # OutOfOrderSequence (45), InvalidProducerEpoch (47), ...
            return AppendResult(exc.error_code, error_message=str(exc) or None)
        if not info.is_duplicate:  # a retried batch added nothing to wait for
            self._wake_waiters()
        return AppendResult(
            ErrorCode.none,
            base_offset=info.base_offset,
            log_append_time_ms=info.log_append_time_ms,
            log_start_offset=info.log_start_offset,
        )

    # --- fetch ----------------------------------------------------------------------------

    async def read(
        self,
        principal: Principal | None,
        topic: str,
        partition: int,
        *,
        fetch_offset: int,
        max_bytes: int,
        read_committed: bool,
        current_leader_epoch: int = -1,
        min_one_batch: bool = True,
    ) -> ReadResult:
        """Whole batches from `fetch_offset` up to the high watermark (= log end offset).

        `current_leader_epoch` (Fetch v9+) and `min_one_batch` (KIP-74: only the first
        partition with data in a response may exceed its byte limit) go beyond the seam's
        LogManager.read; the Fetch handler passes them.
        """
        found = self._leader_log(principal, topic, partition, current_leader_epoch)
        if isinstance(found, int):
            return ReadResult(found)
        log = found[0]
        start = log.log_start_offset
        high_watermark = log.log_end_offset  # no followers yet: everything is replicated
        if fetch_offset < start or fetch_offset > high_watermark:
            return ReadResult(ErrorCode.offset_out_of_range, high_watermark, high_watermark, start)
        if fetch_offset == high_watermark:
            return ReadResult(ErrorCode.none, high_watermark, high_watermark, start, b"")
        try:
            piece = log.read(fetch_offset, max(max_bytes, 0), high_watermark, min_one_batch)
        except LogError as exc:  # retention moved the log start offset meanwhile
            return ReadResult(exc.error_code, high_watermark, high_watermark, log.log_start_offset)
        records: bytes | FileSlice
        if not piece.length or piece.segment is None:
            records = b""
        elif piece.length < INLINE_READ_BYTES:
            records = piece.read_bytes()
        else:
            records = FileSlice(piece.fd, piece.position, piece.length, owner=piece.segment)
        return ReadResult(ErrorCode.none, high_watermark, high_watermark, start, records)

    # --- list offsets ---------------------------------------------------------------------

    async def list_offset(
        self,
        principal: Principal | None,
        topic: str,
        partition: int,
        *,
        timestamp: int,
        current_leader_epoch: int,
    ) -> OffsetResult:
        """-2 earliest, -1 latest (log end offset), -3 max timestamp, -4/-5, else by time."""
        found = self._leader_log(principal, topic, partition, current_leader_epoch)
        if isinstance(found, int):
            return OffsetResult(found)
        log = found[0]
        if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
            return OffsetResult(ErrorCode.none, -1, log.log_start_offset)
        if timestamp == LATEST_TIMESTAMP:
            return OffsetResult(ErrorCode.none, -1, log.log_end_offset)
        if timestamp == EARLIEST_PENDING_UPLOAD_TIMESTAMP:
            return OffsetResult(ErrorCode.none)
        if timestamp == MAX_TIMESTAMP:
            timestamp = _max_timestamp(log)
            if timestamp < 0:
                return OffsetResult(ErrorCode.none)
        elif timestamp < 0:
            return OffsetResult(ErrorCode.invalid_request)
        try:
            found_offset = log.offset_for_timestamp(timestamp)
        except LogError as exc:
            return OffsetResult(exc.error_code)
        if found_offset is None:
            return OffsetResult(ErrorCode.none)
        return OffsetResult(ErrorCode.none, found_offset.timestamp, found_offset.offset)

    # --- long poll ------------------------------------------------------------------------

    async def wait_for_append(self, timeout_s: float) -> None:
        """Return after the next append to any partition here, or after `timeout_s`."""
        if timeout_s <= 0:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.add(waiter)
        timer = loop.call_later(timeout_s, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiters.discard(waiter)

    def _wake_waiters(self) -> None:
        if not self._waiters:
            return
        waiters = self._waiters
        self._waiters = set()
        for waiter in waiters:
            _resolve(waiter)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _max_timestamp(log: PartitionLog) -> int:
    """The largest record timestamp in the readable log, -1 when it has no records."""
    start = log.log_start_offset
    return max(
        (s.max_timestamp for s in log.segments if s.next_offset > start and not s.is_empty),
        default=-1,
    )
