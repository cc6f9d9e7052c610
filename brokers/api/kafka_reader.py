"""The web tier's reads: Fetch and ListOffsets to the partition leaders, batches to records.

A read from a known offset is one Fetch: its answer carries the records and, per partition,
the log start offset and the high watermark (the log end a consumer sees), so nothing needs to
be asked before it. "earliest" fetches from offset 0, which the leader either serves or answers
with OFFSET_OUT_OF_RANGE and its log start offset; "latest" and a time ask ListOffsets first.

- Leaders come from TenantCluster's cached Metadata. NOT_LEADER_OR_FOLLOWER,
  UNKNOWN_TOPIC_OR_PARTITION and their kin, and a lost connection, refresh it and retry until
  the caller's deadline: a read changes nothing, so unlike a produce any retry is safe.
- A Fetch may wait (long poll: ``max_wait`` with ``min_bytes`` 1), so it borrows a connection
  of its own (TenantCluster.borrow_connection); ListOffsets shares the node's connection.
- Batches are decoded by aiokafka's record reader (Cython, its codecs through cramjam):
  measured 2.5x faster than brokers/log/records.py on 100-byte records.

No Django here: the caller passes the cluster (addresses and credentials) and a deadline.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import importlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka.record.memory_records import MemoryRecords

from brokers.api.kafka_client import TenantCluster
from brokers.api.kafka_connection import KafkaClientError
from brokers.protocol import codec
from brokers.protocol.errors import ErrorCode, error_name

__all__ = (
    "EARLIEST_TIMESTAMP", "LATEST_TIMESTAMP", "FetchResult", "FetchedRecord",
    "OffsetOutOfRangeError", "StartAt", "fetch", "list_offsets", "watermarks",
)

# The newest Fetch that names topics: v13+ name them by id (KIP-516), and a topic deleted and
# made again under its name must read as the new one without a topic id lookup first.
FETCH_VERSION = 12
LIST_OFFSETS_VERSION = 9

# ListOffsets' special timestamps (Kafka protocol): the log start and the log end offsets.
EARLIEST_TIMESTAMP = -2
LATEST_TIMESTAMP = -1

# The timestamp types FetchedRecord has always carried: confluent_kafka.TIMESTAMP_CREATE_TIME
# and TIMESTAMP_LOG_APPEND_TIME. A batch's attribute bit (aiokafka's 0 or 1) is one less.
TIMESTAMP_CREATE_TIME = 1

# Read as read_uncommitted: broker nodes refuse transactional batches, so the last stable
# offset is the high watermark and there are no aborted records to leave out.
_READ_UNCOMMITTED = 0
# Fetch v7+ without a session (KIP-227): session id 0 and the final epoch ask for a full,
# sessionless fetch.
_NO_SESSION_EPOCH = -1

# Answers that mean "ask the current leader again": Metadata is refreshed before the retry.
_RETRIABLE = frozenset({
    "NOT_LEADER_OR_FOLLOWER", "LEADER_NOT_AVAILABLE", "UNKNOWN_TOPIC_OR_PARTITION",
    "FENCED_LEADER_EPOCH", "UNKNOWN_LEADER_EPOCH", "REPLICA_NOT_AVAILABLE",
    "KAFKA_STORAGE_ERROR", "OFFSET_NOT_AVAILABLE", "NETWORK_EXCEPTION",
    "BROKER_NOT_AVAILABLE", "REQUEST_TIMED_OUT",
})
_RETRY_BACKOFF_S = 0.1
# Batch bytes asked of a leader per Fetch, as Kafka's consumers (max.partition.fetch.bytes'
# default). A read that wants more asks again at once: asking for all of a large max_bytes
# brings whole batches beyond max_records, sent, copied and thrown away (measured: 10,000
# records of 100 bytes read about a fifth slower asking 8 MiB than 1 MiB at a time).
FETCH_ROUND_BYTES = 1024 * 1024

_fetch = importlib.import_module(codec.request_type(1, FETCH_VERSION).__module__)
_list_offsets = importlib.import_module(
    codec.request_type(2, LIST_OFFSETS_VERSION).__module__
)

T = TypeVar("T")


@dataclass(slots=True)
class FetchedRecord:
    partition: int
    offset: int
    timestamp_ms: int
    timestamp_type: int  # confluent_kafka.TIMESTAMP_CREATE_TIME or TIMESTAMP_LOG_APPEND_TIME
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] | None


@dataclass(slots=True)
class FetchResult:
    records: list[FetchedRecord]
    next_offset: int
    log_start_offset: int
    log_end_offset: int


@dataclass(slots=True)
class StartAt:
    """Where a read starts: an ``offset``, earliest/latest, or the first at ``timestamp_ms``."""

    offset: int | None = None
    position: str | None = None  # "earliest" | "latest"
    timestamp_ms: int | None = None


class OffsetOutOfRangeError(KafkaClientError):
    """The asked offset is outside [log start offset, log end offset] of the partition."""

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int):
        super().__init__("OFFSET_OUT_OF_RANGE", f"Offset {offset} is out of range.")
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


async def _retrying(deadline: float, attempt: Callable[[bool], Awaitable[T]]) -> T:
    """``attempt(refresh)`` until it answers, a non-retriable error, or ``deadline``."""
    refresh = False
    while True:
        try:
            return await attempt(refresh)
        except KafkaClientError as exc:
            if exc.error not in _RETRIABLE or time.monotonic() + _RETRY_BACKOFF_S >= deadline:
                raise
        refresh = True
        await asyncio.sleep(_RETRY_BACKOFF_S)


def _leader_of(leaders: Mapping[int, int], topic: str, partition: int) -> int:
    """The partition's leader from a Metadata answer; a retriable error while it has none."""
    leader = leaders.get(partition, -1)
    if leader >= 0:
        return leader
    if partition in leaders:
        raise KafkaClientError(
            "LEADER_NOT_AVAILABLE", f"Partition {partition} of '{topic}' has no leader now."
        )
    raise KafkaClientError(
        "UNKNOWN_TOPIC_OR_PARTITION",
        f"Partition {partition} of '{topic}' is not known to the brokers.",
    )


def _partition_error(cluster: TenantCluster, topic: str, partition: int, code: int,
                     doing: str) -> KafkaClientError:
    name = error_name(code)
    if name in _RETRIABLE:
        cluster.forget_leaders(topic)
    return KafkaClientError(name, f"{doing} '{topic}-{partition}' answered {name}.")


# --- ListOffsets -----------------------------------------------------------------------------


async def list_offsets(
    cluster: TenantCluster, topic_partitions: Mapping[str, Sequence[int]], timestamp: int,
    deadline: float,
) -> dict[tuple[str, int], int]:
    """Offsets at ``timestamp`` (EARLIEST_TIMESTAMP, LATEST_TIMESTAMP or ms) by topic-partition.

    A partition with no record at or after a real timestamp answers -1, as Kafka's does.
    """
    found: dict[tuple[str, int], int] = {}
    waiting = [(t, p) for t, partitions in topic_partitions.items() for p in partitions]

    async def attempt(refresh: bool) -> None:
        leaders = {topic: await cluster.leaders(topic, deadline, refresh)
                   for topic in dict.fromkeys(t for t, _ in waiting)}
        by_leader: dict[int, list[tuple[str, int]]] = {}
        for topic, partition in waiting:
            leader = _leader_of(leaders[topic], topic, partition)
            by_leader.setdefault(leader, []).append((topic, partition))
        answers = await asyncio.gather(*(
            _list_offsets_on(cluster, leader, asked, timestamp, deadline)
            for leader, asked in by_leader.items()
        ), return_exceptions=True)
        errors = []
        for answer in answers:
            if isinstance(answer, BaseException):
                if not isinstance(answer, KafkaClientError):
                    raise answer
                errors.append(answer)
                continue
            offsets, error = answer
            found.update(offsets)
            if error is not None:
                errors.append(error)
        waiting[:] = [tp for tp in waiting if tp not in found]
        if errors:
            # A lasting error before a retriable one: no use retrying then.
            raise min(errors, key=lambda exc: exc.error in _RETRIABLE)

    await _retrying(deadline, attempt)
    return found


async def _list_offsets_on(
    cluster: TenantCluster, leader: int, asked: list[tuple[str, int]], timestamp: int,
    deadline: float,
) -> tuple[dict[tuple[str, int], int], KafkaClientError | None]:
    """One ListOffsets to one leader: the offsets it gave, and the first partition's error."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in asked:
        by_topic.setdefault(topic, []).append(partition)
    request = _list_offsets.ListOffsetsRequest(
        replica_id=-1, isolation_level=_READ_UNCOMMITTED, topics=tuple(
            _list_offsets.ListOffsetsTopic(name=topic, partitions=tuple(
                _list_offsets.ListOffsetsPartition(partition_index=p, timestamp=timestamp)
                for p in partitions
            ))
            for topic, partitions in by_topic.items()
        ),
    )
    connection = await cluster.connection_to(leader, deadline)
    answer = await connection.request(request, deadline)
    found: dict[tuple[str, int], int] = {}
    error: KafkaClientError | None = None
    for topic in answer.topics:
        for p in topic.partitions:
            if p.error_code == ErrorCode.none:
                found[topic.name, int(p.partition_index)] = int(p.offset)
            elif error is None:
                error = _partition_error(
                    cluster, topic.name, p.partition_index, p.error_code, "Listing offsets of"
                )
    return found, error


async def watermarks(
    cluster: TenantCluster, topic: str, partitions: Sequence[int], deadline: float
) -> dict[int, tuple[int, int]]:
    """(log start offset, log end offset) of each partition."""
    # Kafka refuses a partition listed twice in one ListOffsets: two requests, sent together.
    starts, ends = await asyncio.gather(
        list_offsets(cluster, {topic: partitions}, EARLIEST_TIMESTAMP, deadline),
        list_offsets(cluster, {topic: partitions}, LATEST_TIMESTAMP, deadline),
    )
    return {p: (starts[topic, p], ends[topic, p]) for p in partitions}


# --- Fetch -----------------------------------------------------------------------------------


async def fetch(
    cluster: TenantCluster, topic: str, partition: int, start: StartAt, max_records: int,
    max_bytes: int, wait_s: float, deadline: float,
) -> FetchResult:
    """Records of one partition from ``start``: at least one if any is there, up to the limits.

    ``max_bytes`` counts key and value bytes; the record that reaches it is the last one. At
    the log end the leader holds the Fetch up to ``wait_s`` for a record to arrive (long poll).
    Raises OffsetOutOfRangeError for an offset outside the log, KafkaClientError otherwise.
    """
    wait_until = time.monotonic() + wait_s
    offset = await _start_offset(cluster, topic, partition, start, deadline)
    records: list[FetchedRecord] = []
    size = 0
    while True:
        attempt = functools.partial(
            _fetch_on_leader, cluster, topic, partition, offset,
            # Rounds after the first only while records are known to be there: no wait.
            0.0 if records else wait_until, max_bytes, deadline,
        )
        try:
            answer = await _retrying(deadline, attempt)
        except KafkaClientError:
            if records:  # what was read stands; the next read meets the error
                break
            raise
        log_start, log_end = int(answer.log_start_offset), int(answer.high_watermark)
        if answer.error_code == ErrorCode.offset_out_of_range:
            if log_start < 0 or log_end < 0:  # Kafka's own leaders leave them out here
                log_start, log_end = (await watermarks(
                    cluster, topic, [partition], deadline))[partition]
            if records:
                break
            if start.offset is not None or time.monotonic() >= deadline:
                raise OffsetOutOfRangeError(offset, log_start, log_end)
            # Not a position the caller chose (earliest, latest, a time): retention or a new
            # leader moved the log since; start from where it is now.
            offset = log_start if offset < log_start else log_end
            continue
        before = offset
        offset, size, is_full = _take_records(
            records, partition, answer.records, offset, max_records, max_bytes, size
        )
        if is_full or offset >= log_end or offset == before:
            break
    return FetchResult(records, offset, log_start, max(log_end, offset))


async def _start_offset(
    cluster: TenantCluster, topic: str, partition: int, start: StartAt, deadline: float
) -> int:
    if start.offset is not None:
        return start.offset
    if start.position == "earliest":
        # No offset is below the log start: the leader serves 0 or answers its log start.
        return 0
    if start.timestamp_ms is not None:
        at = await list_offsets(cluster, {topic: [partition]}, start.timestamp_ms, deadline)
        if at[topic, partition] >= 0:
            return at[topic, partition]
        # No record at or after the time: the log end, as Kafka's consumers do.
    ends = await list_offsets(cluster, {topic: [partition]}, LATEST_TIMESTAMP, deadline)
    return ends[topic, partition]


async def _fetch_on_leader(
    cluster: TenantCluster, topic: str, partition: int, offset: int, wait_until: float,
    max_bytes: int, deadline: float, refresh: bool,
) -> Any:
    """One Fetch of one partition from its leader, waiting until ``wait_until`` at the log end:
    the partition's answer, without error or with OFFSET_OUT_OF_RANGE; any other error raises
    KafkaClientError."""
    leaders = await cluster.leaders(topic, deadline, refresh)
    leader = _leader_of(leaders, topic, partition)
    # Key and value bytes never exceed an uncompressed batch's: no more is needed for them.
    round_bytes = min(max_bytes, FETCH_ROUND_BYTES)
    request = _fetch.FetchRequest(
        replica_id=-1,
        max_wait=datetime.timedelta(seconds=max(wait_until - time.monotonic(), 0.0)),
        min_bytes=1,
        # Soft limits (KIP-74): a batch larger than them still comes, whole.
        max_bytes=round_bytes,
        isolation_level=_READ_UNCOMMITTED,
        session_id=0,
        session_epoch=_NO_SESSION_EPOCH,
        topics=(_fetch.FetchTopic(topic=topic, partitions=(_fetch.FetchPartition(
            partition=partition, fetch_offset=offset, partition_max_bytes=round_bytes,
        ),)),),
        forgotten_topics_data=(),
        rack_id="",
    )
    connection = await cluster.borrow_connection(leader, deadline)
    try:
        # The leader may hold the answer until wait_until: the deadline is later than that.
        answer = await connection.request(request, deadline)
    except BaseException:
        # Broken, timed out, or cancelled with the answer still owed: never lend it again.
        connection.close()
        raise
    cluster.give_back(leader, connection)
    if answer.error_code != ErrorCode.none:
        name = error_name(answer.error_code)
        raise KafkaClientError(name, f"Fetching '{topic}-{partition}' answered {name}.")
    for topic_answer in answer.responses:
        for data in topic_answer.partitions:
            if data.partition_index != partition:
                continue
            if data.error_code in (ErrorCode.none, ErrorCode.offset_out_of_range):
                return data
            raise _partition_error(cluster, topic, partition, data.error_code, "Fetching")
    raise KafkaClientError(
        "UNKNOWN_SERVER_ERROR", f"The leader did not answer for '{topic}-{partition}'."
    )


def _take_records(
    out: list[FetchedRecord], partition: int, data: bytes | None, offset: int,
    max_records: int, max_bytes: int, size: int,
) -> tuple[int, int, bool]:
    """Add the records at or after ``offset`` to ``out`` until a limit.

    Returns the next offset to read, the key and value bytes so far, and whether a limit was
    reached.
    """
    if not data:
        return offset, size, False
    batches = MemoryRecords(data)
    while (batch := batches.next_batch()) is not None:
        # A control batch holds transaction markers (KIP-98), never a consumer's records.
        if not batch.is_control_batch:
            for record in batch:
                at = record.offset
                if at < offset:  # the leader sends whole batches: this one began earlier
                    continue
                key, value, headers = record.key, record.value, record.headers
                out.append(FetchedRecord(
                    partition, at, record.timestamp,
                    record.timestamp_type + TIMESTAMP_CREATE_TIME, key, value, headers or None,
                ))
                offset = at + 1
                size += (len(key) if key else 0) + (len(value) if value else 0)
                if len(out) >= max_records or size >= max_bytes:
                    return offset, size, True
        # Past the whole batch, as Kafka's consumers go: compaction may have left gaps in it.
        offset = max(offset, batch.next_offset)
    return offset, size, False

