"""Idempotent producers (KIP-98) against real logs: InitProducerId, de-duplication, errors."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import Producer
from data_test_support import DataBroker, produce
from kafka import KafkaProducer
from protocol_test_support import build
from test_produce_clients import (
    PARTITIONS,
    TOPIC,
    _key,
    _value,
    assert_complete_and_ordered,
    consume_aiokafka,
    consume_kafka_python,
)

from brokers.log.batch import iter_batches
from brokers.log.records import Record, build_batch
from brokers.protocol import codec
from brokers.protocol.errors import ErrorCode

COUNT = 5_000


@pytest.fixture
def broker(tmp_path: Path):
    with DataBroker(tmp_path) as running:
        yield running


def producer_batch(values: list[bytes], *, producer_id: int, epoch: int, sequence: int) -> bytes:
    records = [Record(key=None, value=value) for value in values]
    return bytes(build_batch(records, 0, producer_id=producer_id, producer_epoch=epoch,
                             base_sequence=sequence))


def init_producer_id(wire, version: int = 4, transactional_id: str | None = None,
                     producer_id: int = -1, epoch: int = -1):
    request = build(codec.request_type(22, version), transactional_id=transactional_id,
                    transaction_timeout=datetime.timedelta(seconds=60),
                    producer_id=producer_id, producer_epoch=epoch)
    return wire.call(request)


def stored_batches(broker: DataBroker, partition: int) -> list[tuple[int, int]]:
    """(base offset, base sequence) of each batch in the partition's log."""
    data = broker.call(lambda: broker.log(TOPIC, partition).read(0, 1 << 24).read_bytes())
    view = memoryview(data)
    return [(base, int.from_bytes(view[pos + 53 : pos + 57], "big", signed=True))
            for pos, _, base, _ in iter_batches(view)]


def log_ends(broker: DataBroker) -> list[int]:
    return broker.call(lambda: [broker.log(TOPIC, p).log_end_offset for p in range(PARTITIONS)])


# --- InitProducerId ----------------------------------------------------------------------


@pytest.mark.parametrize("version", range(0, 6))
def test_init_producer_id_gives_a_fresh_id_at_epoch_zero(broker: DataBroker, version: int) -> None:
    with broker.wire() as wire:
        first = init_producer_id(wire, version)
        second = init_producer_id(wire, version)
    assert first.error_code == second.error_code == ErrorCode.none
    assert first.producer_id >= 0 and second.producer_id != first.producer_id
    assert first.producer_epoch == 0


def test_an_epoch_bump_request_gets_a_new_id_as_kafka_answers_idempotent_producers(
    broker: DataBroker,
) -> None:
    with broker.wire() as wire:
        first = init_producer_id(wire)
        bumped = init_producer_id(wire, producer_id=first.producer_id, epoch=0)
    assert bumped.error_code == ErrorCode.none
    assert (bumped.producer_id, bumped.producer_epoch) != (first.producer_id, 0)


def test_a_transactional_id_is_refused_as_transactions_are_not_implemented(
    broker: DataBroker,
) -> None:
    with broker.wire() as wire:
        refused = init_producer_id(wire, transactional_id="tx-1")
        empty = init_producer_id(wire, transactional_id="")
    assert refused.error_code == ErrorCode.transactional_id_authorization_failed
    assert (refused.producer_id, refused.producer_epoch) == (-1, -1)
    assert empty.error_code == ErrorCode.invalid_request


# --- raw produce: duplicates and errors ----------------------------------------------------


def test_a_resent_idempotent_batch_gets_the_same_base_offset_and_is_stored_once(
    broker: DataBroker,
) -> None:
    with broker.wire() as wire:
        pid = init_producer_id(wire).producer_id
        first = producer_batch([b"a", b"b"], producer_id=pid, epoch=0, sequence=0)
        second = producer_batch([b"c"], producer_id=pid, epoch=0, sequence=2)
        answers = [produce(wire, TOPIC, 0, batch) for batch in (first, second, first, second)]
    assert [a.error_code for a in answers] == [ErrorCode.none] * 4
    assert [a.base_offset for a in answers] == [0, 2, 0, 2]
    assert stored_batches(broker, 0) == [(0, 0), (2, 2)]
    assert log_ends(broker)[0] == 3


def test_a_sequence_gap_answers_out_of_order_sequence_number(broker: DataBroker) -> None:
    with broker.wire() as wire:
        pid = init_producer_id(wire).producer_id
        produce(wire, TOPIC, 1, producer_batch([b"a"], producer_id=pid, epoch=0, sequence=0))
        gap = produce(wire, TOPIC, 1, producer_batch([b"b"], producer_id=pid, epoch=0,
                                                     sequence=2))
    assert gap.error_code == ErrorCode.out_of_order_sequence_number == 45
    assert log_ends(broker)[1] == 1


def test_an_older_epoch_answers_invalid_producer_epoch(broker: DataBroker) -> None:
    with broker.wire() as wire:
        pid = init_producer_id(wire).producer_id
        produce(wire, TOPIC, 2, producer_batch([b"a"], producer_id=pid, epoch=1, sequence=0))
        fenced = produce(wire, TOPIC, 2, producer_batch([b"b"], producer_id=pid, epoch=0,
                                                        sequence=1))
    assert fenced.error_code == ErrorCode.invalid_producer_epoch == 47
    assert log_ends(broker)[2] == 1


def test_producer_state_survives_a_broker_restart(tmp_path: Path) -> None:
    batch = producer_batch([b"a", b"b"], producer_id=7, epoch=0, sequence=0)
    with DataBroker(tmp_path) as broker, broker.wire() as wire:
        assert produce(wire, TOPIC, 0, batch).base_offset == 0
        next_batch = producer_batch([b"c"], producer_id=7, epoch=0, sequence=2)
        assert produce(wire, TOPIC, 0, next_batch).base_offset == 2
    with DataBroker(tmp_path) as broker, broker.wire() as wire:
        retry = produce(wire, TOPIC, 0, batch)
        assert (retry.error_code, retry.base_offset) == (ErrorCode.none, 0)
        assert stored_batches(broker, 0) == [(0, 0), (2, 2)]


# --- real clients with idempotence on ------------------------------------------------------


def test_kafka_python_default_producer_is_idempotent_and_every_record_lands_once(
    broker: DataBroker,
) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)  # enable_idempotence=True
    try:
        futures = [producer.send(TOPIC, key=_key(i), value=_value(i)) for i in range(COUNT)]
        producer.flush(timeout=30)
        metadata = [future.get(timeout=10) for future in futures]
    finally:
        producer.close(timeout=5)
    assert producer.config["enable_idempotence"]
    assert sum(log_ends(broker)) == COUNT
    assert len({(m.partition, m.offset) for m in metadata}) == COUNT
    assert_complete_and_ordered(consume_kafka_python(broker.bootstrap, COUNT), COUNT)
    assert broker.services.producer_ids_allocated == 1


def test_confluent_kafka_with_enable_idempotence_lands_every_record_once(
    broker: DataBroker,
) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                         "linger.ms": 5})
    errors: list[object] = []

    def on_delivery(error: object, message: object) -> None:
        if error is not None:
            errors.append(error)

    for i in range(COUNT):
        while True:
            try:
                producer.produce(TOPIC, key=_key(i), value=_value(i), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(30) == 0
    assert errors == []
    assert sum(log_ends(broker)) == COUNT
    assert_complete_and_ordered(consume_kafka_python(broker.bootstrap, COUNT), COUNT)
    assert broker.services.producer_ids_allocated == 1


def test_aiokafka_with_enable_idempotence_lands_every_record_once(broker: DataBroker) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap,
                                    enable_idempotence=True, linger_ms=5)
        await producer.start()
        try:
            futures = [await producer.send(TOPIC, key=_key(i), value=_value(i))
                       for i in range(COUNT)]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())
    assert sum(log_ends(broker)) == COUNT
    assert_complete_and_ordered(consume_aiokafka(broker.bootstrap, COUNT), COUNT)
    assert broker.services.producer_ids_allocated == 1


def test_client_batches_carry_the_producer_id_init_producer_id_gave(broker: DataBroker) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        producer.send(TOPIC, key=_key(0), value=_value(0)).get(timeout=10)
    finally:
        producer.close(timeout=5)
    partition = next(p for p, end in enumerate(log_ends(broker)) if end)
    data = broker.call(lambda: broker.log(TOPIC, partition).read(0, 1 << 20).read_bytes())
    assert int.from_bytes(data[43:51], "big") == 1001  # DataServices' first producer id


# --- producer ids from the database (brokers/node/producer_ids.py) --------------------------


def test_the_allocator_hands_out_a_block_before_claiming_the_next() -> None:
    from brokers.node.producer_ids import ProducerIdAllocator

    claims: list[int] = []

    async def claim(size: int) -> int:
        claims.append(size)
        return 10 * len(claims)

    async def run() -> list[int]:
        allocator = ProducerIdAllocator(claim, block_size=3)
        return list(await asyncio.gather(*(allocator.allocate() for _ in range(7))))

    assert sorted(asyncio.run(run())) == [10, 11, 12, 20, 21, 22, 30]
    assert claims == [3, 3, 3]


@pytest.mark.django_db(transaction=True)
def test_blocks_claimed_from_the_database_never_overlap_across_restarts() -> None:
    from brokers.models import ClusterState
    from brokers.node.producer_ids import BLOCK_SIZE, ProducerIdAllocator, claim_block

    first = claim_block()
    second = claim_block()
    assert second == first + BLOCK_SIZE
    assert ClusterState.get().next_producer_id == second + BLOCK_SIZE

    async def allocate_twice() -> list[int]:
        allocator = ProducerIdAllocator()  # a node after a restart: a block of its own
        return [await allocator.allocate(), await allocator.allocate()]

    assert asyncio.run(allocate_twice()) == [second + BLOCK_SIZE, second + BLOCK_SIZE + 1]
