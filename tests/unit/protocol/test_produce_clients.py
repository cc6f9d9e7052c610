"""Real clients produce to real logs and read everything back, in order, per partition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioTopicPartition
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as RdTopicPartition
from data_test_support import DataBroker
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition

from brokers.log.batch import iter_batches
from brokers.protocol.registry import default_registry

TOPIC = "events"
PARTITIONS = 3
KEYS = 100

Consumed = dict[int, list[tuple[int, bytes, bytes]]]  # partition -> (offset, key, value)


@pytest.fixture
def broker(tmp_path: Path):
    with DataBroker(tmp_path) as running:
        yield running


def _key(i: int) -> bytes:
    return b"key-%d" % (i % KEYS)


def _value(i: int) -> bytes:
    return b"%06d" % i


# --- producers --------------------------------------------------------------------------


def produce_kafka_python(bootstrap: str, count: int, compression: str, acks: int = 1) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks=acks,
        compression_type=None if compression == "none" else compression,
        linger_ms=5,
        enable_idempotence=False,
    )
    try:
        futures = [producer.send(TOPIC, key=_key(i), value=_value(i)) for i in range(count)]
        producer.flush(timeout=30)
        if acks:
            for future in futures:
                future.get(timeout=10)
    finally:
        producer.close(timeout=5)


def produce_aiokafka(bootstrap: str, count: int, compression: str) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks=1,
            compression_type=None if compression == "none" else compression,
            linger_ms=5,
        )
        await producer.start()
        try:
            futures = [
                await producer.send(TOPIC, key=_key(i), value=_value(i)) for i in range(count)
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())


def produce_confluent(bootstrap: str, count: int, compression: str) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": 1,
            "compression.type": compression,
            "linger.ms": 5,
        }
    )
    errors: list[object] = []

    def on_delivery(error: object, message: object) -> None:
        if error is not None:
            errors.append(error)

    for i in range(count):
        while True:
            try:
                producer.produce(TOPIC, key=_key(i), value=_value(i), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(30) == 0
    assert errors == []


# --- consumers: assign every partition and seek to an offset ----------------------------


def consume_kafka_python(bootstrap: str, count: int, start: int = 0) -> Consumed:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    out: Consumed = {p: [] for p in range(PARTITIONS)}
    try:
        partitions = [KpTopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, start)
        deadline = time.monotonic() + 30
        while sum(map(len, out.values())) < count and time.monotonic() < deadline:
            for tp, messages in consumer.poll(timeout_ms=500).items():
                out[tp.partition] += [(m.offset, m.key, m.value) for m in messages]
    finally:
        consumer.close()
    return out


def consume_aiokafka(bootstrap: str, count: int, start: int = 0) -> Consumed:
    async def run() -> Consumed:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        out: Consumed = {p: [] for p in range(PARTITIONS)}
        try:
            partitions = [AioTopicPartition(TOPIC, p) for p in range(PARTITIONS)]
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, start)
            deadline = time.monotonic() + 30
            while sum(map(len, out.values())) < count and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for tp, messages in batches.items():
                    out[tp.partition] += [(m.offset, m.key, m.value) for m in messages]
        finally:
            await consumer.stop()
        return out

    return asyncio.run(run())


def consume_confluent(bootstrap: str, count: int, start: int = 0) -> Consumed:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "test-assign-only",
            "enable.auto.commit": False,
        }
    )
    out: Consumed = {p: [] for p in range(PARTITIONS)}
    try:
        consumer.assign([RdTopicPartition(TOPIC, p, start) for p in range(PARTITIONS)])
        deadline = time.monotonic() + 30
        while sum(map(len, out.values())) < count and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                assert message.error() is None, message.error()
                out[message.partition()].append(
                    (message.offset(), message.key(), message.value())
                )
    finally:
        consumer.close()
    return out


PRODUCERS: dict[str, Callable[..., None]] = {
    "kafka-python": produce_kafka_python,
    "aiokafka": produce_aiokafka,
    "confluent-kafka": produce_confluent,
}
CONSUMERS: dict[str, Callable[..., Consumed]] = {
    "kafka-python": consume_kafka_python,
    "aiokafka": consume_aiokafka,
    "confluent-kafka": consume_confluent,
}


def assert_complete_and_ordered(consumed: Consumed, count: int) -> None:
    """Every record once; offsets dense from 0 and values in produce order per partition;
    every key in one partition only."""
    seen = []
    partition_of_key: dict[bytes, int] = {}
    for partition, records in consumed.items():
        assert [offset for offset, _, _ in records] == list(range(len(records)))
        values = [int(value) for _, _, value in records]
        assert values == sorted(values), f"partition {partition} out of order"
        for _, key, value in records:
            assert key == _key(int(value))
            assert partition_of_key.setdefault(key, partition) == partition
        seen += values
    assert sorted(seen) == list(range(count))
    assert all(consumed.values()), "the keys should spread over every partition"


@pytest.mark.parametrize("client", list(PRODUCERS))
def test_ten_thousand_keyed_records_round_trip_in_order(broker: DataBroker, client: str) -> None:
    count = 10_000
    PRODUCERS[client](broker.bootstrap, count, "none")
    ends = broker.call(lambda: [broker.log(TOPIC, p).log_end_offset for p in range(PARTITIONS)])
    assert sum(ends) == count
    assert_complete_and_ordered(CONSUMERS[client](broker.bootstrap, count), count)


@pytest.mark.parametrize("compression", ["gzip", "snappy", "lz4", "zstd"])
@pytest.mark.parametrize("client", list(PRODUCERS))
def test_compressed_batches_round_trip(broker: DataBroker, client: str, compression: str) -> None:
    count = 2_000
    PRODUCERS[client](broker.bootstrap, count, compression)
    # Read with another client than the producer's: the batches are stored as sent.
    reader = {"kafka-python": "confluent-kafka", "aiokafka": "kafka-python"}.get(
        client, "aiokafka"
    )
    assert_complete_and_ordered(CONSUMERS[reader](broker.bootstrap, count), count)
    # The batches are stored compressed, as the producer built them (librdkafka sends a
    # batch uncompressed when compression would not make it smaller).
    data = broker.call(lambda: broker.log(TOPIC, 0).read(0, 1 << 24).read_bytes())
    view = memoryview(data)
    codecs = {view[position + 22] & 0x07 for position, _, _, _ in iter_batches(view)}
    if client == "confluent-kafka" and compression == "lz4" and _lacks_find_coordinator():
        # librdkafka infers LZ4 support from FindCoordinator v0 (a 0.8.2 broker marker) and
        # sends uncompressed batches to a broker without it.
        assert codecs == {0}
    else:
        assert codecs - {0}


def _lacks_find_coordinator() -> bool:
    return default_registry().get(10) is None


@pytest.mark.parametrize("client", list(CONSUMERS))
def test_seek_to_the_middle_starts_there(broker: DataBroker, client: str) -> None:
    produce_confluent(broker.bootstrap, 3_000, "none")
    ends = broker.call(lambda: [broker.log(TOPIC, p).log_end_offset for p in range(PARTITIONS)])
    consumed = CONSUMERS[client](broker.bootstrap, sum(ends) - 3 * 500, start=500)
    for partition, records in consumed.items():
        assert [offset for offset, _, _ in records] == list(range(500, ends[partition]))


def test_acks_zero_appends_without_answering(broker: DataBroker) -> None:
    produce_kafka_python(broker.bootstrap, 1_000, "none", acks=0)
    deadline = time.monotonic() + 10
    total = 0
    while time.monotonic() < deadline:
        total = broker.call(
            lambda: sum(broker.log(TOPIC, p).log_end_offset for p in range(PARTITIONS))
        )
        if total == 1_000:
            break
        time.sleep(0.05)
    assert total == 1_000
    assert_complete_and_ordered(consume_confluent(broker.bootstrap, 1_000), 1_000)
