"""Produce over a raw socket: Kafka's error codes, nothing appended on error, still serving."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_test_support import (
    DataBroker,
    batch_of,
    corrupt_crc,
    produce,
    topic_meta,
)

from brokers.protocol.errors import ErrorCode


@pytest.fixture
def broker(tmp_path: Path):
    with DataBroker(tmp_path) as running:
        yield running


def log_end(broker: DataBroker, topic: str, partition: int) -> int:
    return broker.call(lambda: broker.log(topic, partition).log_end_offset)


@pytest.mark.parametrize("version", range(3, 13))
def test_produce_answers_the_base_offset_at_every_version(broker: DataBroker, version: int) -> None:
    with broker.wire() as wire:
        first = produce(wire, "events", 0, batch_of([b"a", b"b"]), version=version)
        second = produce(wire, "events", 0, batch_of([b"c"]), version=version)
    assert (first.error_code, first.base_offset) == (ErrorCode.none, 0)
    assert second.base_offset == 2
    assert first.log_append_time is None  # CreateTime: -1 on the wire
    if version >= 5:
        assert second.log_start_offset == 0


def test_produce_v13_names_topics_by_id(broker: DataBroker) -> None:
    topic_id = topic_meta("events").topic_id
    with broker.wire() as wire:
        ok = produce(wire, "", 1, batch_of([b"x"]), version=13, topic_id=topic_id)
        unknown = produce(
            wire, "", 1, batch_of([b"x"]), version=13, topic_id=topic_meta("nope").topic_id
        )
    assert (ok.error_code, ok.base_offset) == (ErrorCode.none, 0)
    assert unknown.error_code == ErrorCode.unknown_topic_id
    assert log_end(broker, "events", 1) == 1


def test_log_append_time_topics_answer_the_broker_time(tmp_path: Path) -> None:
    topics = [topic_meta("stamped", 1, configs={"message.timestamp.type": "LogAppendTime"})]
    with DataBroker(tmp_path, topics) as broker, broker.wire() as wire:
        result = produce(wire, "stamped", 0, batch_of([b"x"], timestamp_ms=1))
    assert result.error_code == ErrorCode.none
    assert result.log_append_time is not None and result.log_append_time.year >= 2024


@pytest.mark.parametrize(
    ("topic", "partition", "code"),
    [
        ("elsewhere", 0, ErrorCode.not_leader_or_follower),
        ("no-such-topic", 0, ErrorCode.unknown_topic_or_partition),
        ("events", 9, ErrorCode.unknown_topic_or_partition),
    ],
)
def test_produce_where_this_broker_cannot_append(
    broker: DataBroker, topic: str, partition: int, code: ErrorCode
) -> None:
    with broker.wire() as wire:
        result = produce(wire, topic, partition, batch_of([b"x"]))
        assert result.error_code == code
        assert result.base_offset == -1
        # The connection keeps serving.
        assert produce(wire, "events", 0, batch_of([b"y"])).error_code == ErrorCode.none


def test_a_corrupt_batch_is_refused_and_nothing_is_appended(broker: DataBroker) -> None:
    with broker.wire() as wire:
        produce(wire, "events", 0, batch_of([b"before"]))
        result = produce(wire, "events", 0, corrupt_crc(batch_of([b"bad", b"crc"])), version=9)
        assert result.error_code == ErrorCode.corrupt_message
        assert result.error_message  # v8+: the log says why
        assert log_end(broker, "events", 0) == 1
        after = produce(wire, "events", 0, batch_of([b"after"]))
    assert after.base_offset == 1


def test_a_batch_over_max_message_bytes_is_message_too_large(broker: DataBroker) -> None:
    with broker.wire() as wire:
        result = produce(wire, "small", 0, batch_of([b"x" * 3000]))
        assert result.error_code == ErrorCode.message_too_large
        assert log_end(broker, "small", 0) == 0
        assert produce(wire, "small", 0, batch_of([b"x" * 100])).error_code == ErrorCode.none


def test_invalid_required_acks(broker: DataBroker) -> None:
    with broker.wire() as wire:
        result = produce(wire, "events", 0, batch_of([b"x"]), acks=2)
    assert result.error_code == ErrorCode.invalid_required_acks
    assert log_end(broker, "events", 0) == 0


def test_transactional_produce_is_refused(broker: DataBroker) -> None:
    with broker.wire() as wire:
        result = produce(wire, "events", 0, batch_of([b"x"]), transactional_id="tx-1")
    assert result.error_code == ErrorCode.transactional_id_authorization_failed
    assert log_end(broker, "events", 0) == 0


def test_an_idempotent_producers_batch_is_stored_as_sent(broker: DataBroker) -> None:
    with broker.wire() as wire:
        result = produce(wire, "events", 2, batch_of([b"x"], producer_id=42))
    assert result.error_code == ErrorCode.none
    data = broker.call(lambda: broker.log("events", 2).read(0, 1 << 20).read_bytes())
    assert int.from_bytes(data[43:51], "big") == 42  # producerId


def test_acks_zero_gets_no_response_and_an_error_closes_the_connection(
    broker: DataBroker,
) -> None:
    with broker.wire() as wire:
        produce(wire, "events", 0, batch_of([b"x"]), acks=0)
        ok = produce(wire, "events", 0, batch_of([b"y"]))  # answered next: nothing came before
        assert ok.base_offset == 1
        produce(wire, "elsewhere", 0, batch_of([b"z"]), acks=0)
        assert wire.is_closed_by_server()
    with broker.wire() as wire:
        assert produce(wire, "events", 0, batch_of([b"w"])).base_offset == 2
