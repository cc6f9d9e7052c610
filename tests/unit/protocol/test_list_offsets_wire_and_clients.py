"""ListOffsets: earliest, latest, max timestamp and by time, over the wire and from clients."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition as AioTopicPartition
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as RdTopicPartition
from data_test_support import DataBroker, batch_of, list_offsets_request, produce, topic_meta
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition

from brokers.protocol.errors import ErrorCode

T0 = 1_700_000_000_000


@pytest.fixture
def broker(tmp_path: Path):
    """`events` partition 0: offsets 0-2 at T0+0..2, 3-4 at T0+5000.., 5-6 at T0+2000.."""
    with DataBroker(tmp_path) as running:
        with running.wire() as wire:
            for count, at in ((3, T0), (2, T0 + 5_000), (2, T0 + 2_000)):
                values = [b"v%d" % i for i in range(count)]
                batch = batch_of(values, timestamps=[at + i for i in range(count)])
                assert produce(wire, "events", 0, batch).error_code == 0
        yield running


def one(broker: DataBroker, timestamp: int, version: int = 7, topic: str = "events", **kwargs):
    with broker.wire() as wire:
        response = wire.call(list_offsets_request({(topic, 0): timestamp}, version=version,
                                                  **kwargs))
    (partition,) = response.topics[0].partitions
    return partition


@pytest.mark.parametrize("version", range(1, 12))
def test_earliest_and_latest_at_every_version(broker: DataBroker, version: int) -> None:
    earliest = one(broker, -2, version)
    latest = one(broker, -1, version)
    assert (earliest.error_code, earliest.offset, earliest.timestamp) == (0, 0, -1)
    assert (latest.error_code, latest.offset) == (0, 7)  # log end offset


@pytest.mark.parametrize(
    ("timestamp", "offset", "found_timestamp"),
    [
        (0, 0, T0),
        (T0 + 1, 1, T0 + 1),
        (T0 + 3, 3, T0 + 5_000),  # the first record at or after it, in offset order
        (T0 + 2_001, 3, T0 + 5_000),
        (T0 + 5_001, 4, T0 + 5_001),
        (T0 + 9_999, -1, -1),
    ],
)
def test_offset_by_timestamp(broker, timestamp: int, offset: int, found_timestamp: int) -> None:
    partition = one(broker, timestamp)
    assert (partition.error_code, partition.offset, partition.timestamp) == (
        0,
        offset,
        found_timestamp,
    )


def test_max_timestamp_kip_734(broker: DataBroker) -> None:
    partition = one(broker, -3, version=7)
    assert (partition.offset, partition.timestamp) == (4, T0 + 5_001)


def test_earliest_local_is_the_log_start(broker: DataBroker) -> None:
    assert one(broker, -4, version=8).offset == 0


@pytest.mark.parametrize(
    ("topic", "code"),
    [
        ("elsewhere", ErrorCode.not_leader_or_follower),
        ("nope", ErrorCode.unknown_topic_or_partition),
    ],
)
def test_list_offsets_errors(broker: DataBroker, topic: str, code: ErrorCode) -> None:
    assert one(broker, -1, topic=topic).error_code == code


def test_leader_epoch_checks(tmp_path: Path) -> None:
    with DataBroker(tmp_path, [topic_meta("events", 1, leader_epoch=5)]) as broker:
        assert one(broker, -1, current_leader_epoch=4).error_code == ErrorCode.fenced_leader_epoch
        assert one(broker, -1, current_leader_epoch=6).error_code == ErrorCode.unknown_leader_epoch
        assert one(broker, -1, current_leader_epoch=5).error_code == ErrorCode.none
        assert one(broker, -1, version=3, current_leader_epoch=4).error_code == ErrorCode.none


def test_read_committed_latest_is_the_last_stable_offset(broker: DataBroker) -> None:
    assert one(broker, -1, isolation_level=1).offset == 7


def test_a_partition_listed_twice_is_an_invalid_request(broker: DataBroker) -> None:
    from data_test_support import request_types

    from brokers.protocol import codec

    types = request_types(2, 7)
    partition = types.ListOffsetsPartition(partition_index=0, current_leader_epoch=-1,
                                           timestamp=-1)
    message = codec.request_type(2, 7)(
        replica_id=-1,
        isolation_level=0,
        topics=(types.ListOffsetsTopic(name="events", partitions=(partition, partition)),),
    )
    with broker.wire() as wire:
        first, second = wire.call(message).topics[0].partitions
    assert first.error_code == ErrorCode.none and first.offset == 7
    assert second.error_code == ErrorCode.invalid_request


def test_kafka_python_offsets(broker: DataBroker) -> None:
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    tp = KpTopicPartition("events", 0)
    try:
        assert consumer.beginning_offsets([tp]) == {tp: 0}
        assert consumer.end_offsets([tp]) == {tp: 7}
        found = consumer.offsets_for_times({tp: T0 + 2_001})[tp]
        assert (found.offset, found.timestamp) == (3, T0 + 5_000)
        assert consumer.offsets_for_times({tp: T0 + 10_000})[tp] is None
    finally:
        consumer.close()


def test_confluent_kafka_offsets(broker: DataBroker) -> None:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "offsets"})
    try:
        assert consumer.get_watermark_offsets(RdTopicPartition("events", 0), timeout=10) == (0, 7)
        (found,) = consumer.offsets_for_times([RdTopicPartition("events", 0, T0 + 1)], timeout=10)
        assert found.error is None and found.offset == 1
        (none,) = consumer.offsets_for_times(
            [RdTopicPartition("events", 0, T0 + 10_000)], timeout=10
        )
        assert none.offset == -1  # OFFSET_END: no record at or after that time
    finally:
        consumer.close()


def test_aiokafka_offsets(broker: DataBroker) -> None:
    async def run():
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
        await consumer.start()
        tp = AioTopicPartition("events", 0)
        try:
            return (
                await consumer.beginning_offsets([tp]),
                await consumer.end_offsets([tp]),
                await consumer.offsets_for_times({tp: T0 + 5_001}),
            )
        finally:
            await consumer.stop()

    tp = AioTopicPartition("events", 0)
    beginning, end, by_time = asyncio.run(run())
    assert beginning == {tp: 0} and end == {tp: 7}
    assert (by_time[tp].offset, by_time[tp].timestamp) == (4, T0 + 5_001)
