"""ReplicaLogManager over real PartitionLogs: leadership, Kafka error codes, offsets, long poll."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from brokers.log.records import Record, build_batch
from brokers.node.log_manager import ReplicaLogManager
from brokers.node.replicas import ReplicaManager
from brokers.node.snapshot import BrokerMeta, MetadataSnapshot, PartitionMeta, TopicMeta
from brokers.protocol.chunks import FileSlice
from brokers.protocol.errors import ErrorCode

BROKER_ID = 1
TENANT = "acme"


def _topic(name: str, partitions: int, leader_id: int = BROKER_ID, epoch: int = 3,
           configs: dict[str, str] | None = None, tenant: str = TENANT) -> TopicMeta:
    replicas = (BROKER_ID, 2)
    return TopicMeta(tenant, name, uuid.uuid4(), 2, configs or {}, tuple(
        PartitionMeta(i, leader_id, epoch, replicas, replicas) for i in range(partitions)))


def _batch(count: int, timestamp_ms: int = 1_000, value: bytes = b"v") -> bytes:
    return bytes(build_batch(
        [Record(key=b"k%d" % i, value=value, timestamp=timestamp_ms + i) for i in range(count)]))


class Harness:
    def __init__(self, data_dir: Path) -> None:
        self.replicas = ReplicaManager(BROKER_ID, data_dir)
        topics = [
            _topic("events", 2),
            _topic("led-elsewhere", 1, leader_id=2),
            _topic("tiny", 1, configs={"max.message.bytes": "200"}),
            _topic("events", 1, tenant="other-tenant"),
        ]
        self.snapshot = MetadataSnapshot(1, "c", {BROKER_ID: BrokerMeta(BROKER_ID, "h", 1, "")},
                                         {(t.tenant, t.name): t for t in topics})
        self.replicas.sync(self.snapshot)
        self.manager = ReplicaLogManager(self.replicas, lambda: self.snapshot, BROKER_ID,
                                         lambda principal: TENANT)

    async def append(self, topic: str, partition: int, data: bytes, acks: int = 1):
        return await self.manager.append(None, topic, partition, data, required_acks=acks,
                                         timeout_ms=1000)

    async def read(self, topic: str, partition: int, offset: int, max_bytes: int = 1 << 20,
                   **extra: object):
        return await self.manager.read(None, topic, partition, fetch_offset=offset,
                                       max_bytes=max_bytes, read_committed=False, **extra)

    async def offset(self, timestamp: int, topic: str = "events", epoch: int = -1):
        return await self.manager.list_offset(None, topic, 0, timestamp=timestamp,
                                              current_leader_epoch=epoch)


@pytest.fixture
def harness(tmp_path: Path):
    h = Harness(tmp_path)
    yield h
    h.replicas.close()


def run(coro):
    return asyncio.run(coro)


def test_append_assigns_offsets_and_stamps_the_leader_epoch(harness: Harness) -> None:
    async def scenario():
        first = await harness.append("events", 0, _batch(3))
        second = await harness.append("events", 0, _batch(2))
        return first, second

    first, second = run(scenario())
    assert (first.error_code, first.base_offset, first.log_start_offset) == (0, 0, 0)
    assert second.base_offset == 3
    assert first.log_append_time_ms == -1  # CreateTime topic
    data = harness.replicas.get(TENANT, "events", 0).read(0, 1 << 20).read_bytes()
    assert int.from_bytes(data[12:16], "big") == 3  # partitionLeaderEpoch from the snapshot


@pytest.mark.parametrize("acks", [0, 1, -1])
def test_every_valid_acks_answers_after_the_local_append(harness: Harness, acks: int) -> None:
    result = run(harness.append("events", 1, _batch(1), acks=acks))
    assert result.error_code == 0 and result.base_offset == 0


@pytest.mark.parametrize(
    ("topic", "partition", "acks", "code"),
    [
        ("nope", 0, 1, ErrorCode.unknown_topic_or_partition),
        ("events", 7, 1, ErrorCode.unknown_topic_or_partition),
        ("led-elsewhere", 0, 1, ErrorCode.not_leader_or_follower),
        ("events", 0, 2, ErrorCode.invalid_required_acks),
    ],
)
def test_append_errors_carry_kafka_codes(harness: Harness, topic, partition, acks, code) -> None:
    assert run(harness.append(topic, partition, _batch(1), acks=acks)).error_code == code


def test_log_errors_become_their_codes_and_nothing_is_appended(harness: Harness) -> None:
    good = _batch(2)
    corrupt = good[:-1] + bytes([good[-1] ^ 0xFF])
    assert run(harness.append("events", 0, corrupt)).error_code == ErrorCode.corrupt_message
    too_large = run(harness.append("tiny", 0, _batch(5, value=b"x" * 100)))
    assert too_large.error_code == ErrorCode.message_too_large
    assert too_large.error_message
    assert harness.replicas.get(TENANT, "events", 0).log_end_offset == 0


def test_tenants_see_only_their_own_topics(harness: Harness) -> None:
    run(harness.append("events", 0, _batch(2)))
    other = harness.replicas.get("other-tenant", "events", 0)
    assert other.log_end_offset == 0


def test_read_returns_whole_batches_as_a_slice_holding_its_segment(harness: Harness) -> None:
    async def scenario():
        for _ in range(20):
            await harness.append("events", 0, _batch(50, value=b"x" * 20))
        return await harness.read("events", 0, 120, max_bytes=10_000)

    result = run(scenario())
    assert (result.error_code, result.high_watermark, result.log_start_offset) == (0, 1000, 0)
    assert result.last_stable_offset == result.high_watermark
    assert isinstance(result.records, FileSlice)
    assert result.records.owner is harness.replicas.get(TENANT, "events", 0).segments[0]
    data = result.records.read()
    assert int.from_bytes(data[:8], "big") == 100  # the batch holding offset 120
    assert len(data) <= 10_000


def test_small_reads_come_back_as_bytes(harness: Harness) -> None:
    run(harness.append("events", 0, _batch(1)))
    result = run(harness.read("events", 0, 0))
    assert isinstance(result.records, bytes) and result.records[:8] == bytes(8)


def test_min_one_batch_false_gives_nothing_when_the_batch_is_too_big(harness: Harness) -> None:
    run(harness.append("events", 0, _batch(10, value=b"x" * 100)))
    assert len(run(harness.read("events", 0, 0, max_bytes=10, min_one_batch=False)).records) == 0
    assert len(run(harness.read("events", 0, 0, max_bytes=10, min_one_batch=True)).records) > 10


def test_read_at_the_log_end_is_empty_and_past_it_out_of_range(harness: Harness) -> None:
    run(harness.append("events", 0, _batch(3)))
    at_end = run(harness.read("events", 0, 3))
    assert at_end.error_code == 0 and at_end.records == b""
    past = run(harness.read("events", 0, 4))
    assert past.error_code == ErrorCode.offset_out_of_range and past.high_watermark == 3
    assert run(harness.read("events", 0, -1)).error_code == ErrorCode.offset_out_of_range


@pytest.mark.parametrize(
    ("epoch", "code"),
    [(-1, 0), (3, 0), (2, ErrorCode.fenced_leader_epoch), (4, ErrorCode.unknown_leader_epoch)],
)
def test_current_leader_epoch_is_checked(harness: Harness, epoch: int, code: int) -> None:
    assert run(harness.read("events", 0, 0, current_leader_epoch=epoch)).error_code == code
    assert run(harness.offset(-1, epoch=epoch)).error_code == code


def test_read_from_a_follower_replica_is_not_leader(harness: Harness) -> None:
    code = run(harness.read("led-elsewhere", 0, 0)).error_code
    assert code == ErrorCode.not_leader_or_follower


def test_list_offset_earliest_latest_max_and_by_time(harness: Harness) -> None:
    async def scenario():
        await harness.append("events", 0, _batch(3, timestamp_ms=1_000))  # 1000..1002
        await harness.append("events", 0, _batch(2, timestamp_ms=5_000))  # 5000..5001
        await harness.append("events", 0, _batch(2, timestamp_ms=2_000))  # 2000..2001
        return {ts: await harness.offset(ts) for ts in (-2, -1, -3, -4, 0, 1_001, 1_003, 5_001,
                                                         9_999)}

    answers = {ts: (r.error_code, r.timestamp, r.offset) for ts, r in run(scenario()).items()}
    assert answers[-2] == (0, -1, 0)
    assert answers[-1] == (0, -1, 7)  # the log end offset, not the last batch's base + 1
    assert answers[-3] == (0, 5_001, 4)
    assert answers[-4] == (0, -1, 0)
    assert answers[0] == (0, 1_000, 0)
    assert answers[1_001] == (0, 1_001, 1)
    assert answers[1_003] == (0, 5_000, 3)
    assert answers[5_001] == (0, 5_001, 4)
    assert answers[9_999] == (0, -1, -1)


def test_list_offset_of_an_empty_log(harness: Harness) -> None:
    assert run(harness.offset(-3)).offset == -1
    assert run(harness.offset(-1)).offset == 0
    assert run(harness.offset(123)).offset == -1


def test_wait_for_append_wakes_on_an_append_and_times_out_without_one(harness: Harness) -> None:
    async def scenario():
        started = time.monotonic()
        await harness.manager.wait_for_append(0.05)
        idle = time.monotonic() - started
        waiter = asyncio.ensure_future(harness.manager.wait_for_append(10))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        started = time.monotonic()
        await harness.append("events", 0, _batch(1))
        await asyncio.wait_for(waiter, 1)
        return idle, time.monotonic() - started

    idle, woken = run(scenario())
    assert idle >= 0.04
    assert woken < 0.5
    assert not harness.manager._waiters
